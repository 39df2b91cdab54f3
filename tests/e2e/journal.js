// Reads an Assetvault journal with Adobe's own I/O Events SDK (@adobe/aio-lib-events),
// as a journal consumer written for AEM does: page by page through getEventsFromJournal,
// then continuously through getEventsObservableFromJournal. Prints what it saw as JSON.
// Usage: node journal.js <journalUrl> <orgId> <apiKey> <accessToken> <expectedEvents>
const sdk = require('@adobe/aio-lib-events')

async function main () {
  const [journalUrl, orgId, apiKey, token, expectedText] = process.argv.slice(2)
  const expected = parseInt(expectedText, 10)
  const client = await sdk.init(orgId, apiKey, token)
  const pages = []
  let url = journalUrl
  let options = { limit: 2 }
  for (let i = 0; i < 50; i++) {
    const page = await client.getEventsFromJournal(url, options)
    pages.push({
      count: page.events ? page.events.length : 0,
      positions: (page.events || []).map((e) => e.position),
      types: (page.events || []).map((e) => e.event.type),
      eventIds: (page.events || []).map((e) => e.event.event_id),
      recipients: (page.events || []).map((e) => e.event.recipient_client_id),
      last: page._page ? page._page.last : null,
      next: page.link && page.link.next,
      retryAfter: page.retryAfter || null
    })
    if (!page.events) break
    url = page.link.next
    options = undefined
  }
  const latest = await client.getEventsFromJournal(journalUrl, { latest: true })
  const observed = await new Promise((resolve, reject) => {
    const seen = []
    const timer = setTimeout(() => { sub.unsubscribe(); reject(new Error('observable timed out: ' + JSON.stringify(seen))) }, 20000)
    const sub = client.getEventsObservableFromJournal(journalUrl, {}, { interval: 200 }).subscribe({
      next: (entry) => {
        seen.push({ position: entry.position, type: entry.event.type })
        if (seen.length === expected) {
          clearTimeout(timer)
          sub.unsubscribe()
          resolve(seen)
        }
      },
      error: (err) => { clearTimeout(timer); reject(err) }
    })
  })
  console.log(JSON.stringify({
    pages,
    latest: { events: latest.events || null, next: latest.link && latest.link.next, retryAfter: latest.retryAfter },
    observed
  }))
  process.exit(0) // the SDK's polling timer would keep the process alive
}

main().catch((err) => { console.error(err); process.exit(1) })
