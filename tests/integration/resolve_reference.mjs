// Resolve a did:ethr with the reference ethr-did-resolver; print the result as JSON.
// Usage: node resolve_reference.mjs <rpcUrl> <registryAddress> <chainIdHex> <did>
import { Resolver } from 'did-resolver'
import { getResolver } from 'ethr-did-resolver'

const [rpcUrl, registry, chainId, did] = process.argv.slice(2)
const resolver = new Resolver(getResolver({ networks: [{ name: chainId, chainId: BigInt(chainId), rpcUrl, registry }] }))
const result = await resolver.resolve(did)
console.log(JSON.stringify(result))
