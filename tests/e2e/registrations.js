// Manages event registrations on Assetvault with Adobe's own I/O Events SDK
// (@adobe/aio-lib-events), as a client of Adobe I/O Events' registration API does:
// create, get, list (the workspace's, then the organization's page by page), update
// without client_id, and delete, all at eventsBaseURL = the Assetvault server.
// Usage: node registrations.js <baseUrl> <consumerOrgId> <apiKey> <accessToken>
// Prints what the SDK answered at each step as JSON.
const sdk = require('@adobe/aio-lib-events')

async function main () {
  const [baseUrl, org, apiKey, token] = process.argv.slice(2)
  const client = await sdk.init('ASSETVAULT@AdobeOrg', apiKey, token, { eventsBaseURL: baseUrl })
  const project = 'project-1'
  const workspace = 'workspace-1'
  const created = []
  for (const name of ['journal one', 'journal two', 'journal three']) {
    created.push(await client.createRegistration(org, project, workspace, {
      client_id: 'sdk-client',
      name,
      description: 'made by the SDK',
      delivery_type: 'journal',
      events_of_interest: [{ provider_id: 'aem-assets', event_code: 'aem.assets.asset.metadata_updated' }]
    }))
  }
  const one = created[0]
  const got = await client.getRegistration(org, project, workspace, one.registration_id)
  const workspaceList = await client.getAllRegistrationsForWorkspace(org, project, workspace)
  const pages = []
  for (let page = 0; page < 10; page++) {
    const found = await client.getAllRegistrationsForOrg(org, { page, size: 2 })
    pages.push({
      page: found.page,
      names: found._embedded.registrations.map((r) => r.name),
      links: Object.keys(found._links).sort()
    })
    if (!found._links.next) break
  }
  const updated = await client.updateRegistration(org, project, workspace, one.registration_id, {
    name: 'journal renamed',
    description: 'updated by the SDK',
    delivery_type: 'journal',
    events_of_interest: [{ provider_id: 'aem-assets', event_code: 'aem.assets.asset.deleted' }]
  })
  for (const r of created) {
    await client.deleteRegistration(org, project, workspace, r.registration_id)
  }
  let afterDelete = null
  try {
    await client.getRegistration(org, project, workspace, one.registration_id)
  } catch (err) {
    afterDelete = String(err.message || err)
  }
  console.log(JSON.stringify({ created: one, got, workspaceList, pages, updated, afterDelete }))
}

main().catch((err) => { console.error(String(err && err.stack ? err.stack : err)); process.exit(1) })
