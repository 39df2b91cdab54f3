// Verifies one webhook delivery with Adobe's own I/O Events SDK (@adobe/aio-lib-events),
// as a receiver written for AEM does: verifyDigitalSignatureForEvent checks that the
// event's recipient_client_id is the receiver's client id, then either RSA signature
// with the public keys named by the delivery's headers. The SDK takes those keys from
// its @adobe/aio-lib-state cache, which the caller points (AIO_STATE_ENDPOINT) at a
// state service pre-seeded with Assetvault's public keys (docs/events.md).
// Usage: node verify.js <recipientClientId> < {"body": "<raw body>", "headers": {...}}
// Prints {"result": <what the SDK answered>}.
const fs = require('fs')
const sdk = require('@adobe/aio-lib-events')

async function main () {
  const [clientId] = process.argv.slice(2)
  const delivery = JSON.parse(fs.readFileSync(0, 'utf8'))
  const headers = delivery.headers
  const client = await sdk.init('ASSETVAULT@AdobeOrg', clientId, 'unused')
  const result = await client.verifyDigitalSignatureForEvent(delivery.body, clientId, {
    digiSignature1: headers['x-adobe-digital-signature-1'],
    digiSignature2: headers['x-adobe-digital-signature-2'],
    publicKeyPath1: headers['x-adobe-public-key1-path'],
    publicKeyPath2: headers['x-adobe-public-key2-path']
  })
  console.log(JSON.stringify({ result }))
}

main().catch((err) => { console.error(err); process.exit(1) })
