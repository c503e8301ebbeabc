/** mDNS discovery: names, the responder (advertise hashes) and the browser (find peers). */
export * from './types.js';
export { SERVICE, subtypeName, randomInstanceName, instanceFqdn, nextInstanceName, claimSubtypeName, fetchingSubtypeName, type ClaimKind } from './names.js';
export { Responder, type ResponderConfig } from './responder.js';
export { browse, findPeers, type BrowserConfig } from './browser.js';
export { listLinks, type LinkAddress } from './interfaces.js';
