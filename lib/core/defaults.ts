/**
 * Every default written once (upstream's values): the daemon's, which passim.conf and flags override
 * (lib/core/config.ts), and an item's when its publisher gives none (CLI, control socket, D-Bus).
 */

/** HTTPS port (passim.conf Port=) */
export const DEFAULT_PORT = 27500;
/** largest item a publisher may add, bytes (MaxItemSize=) */
export const DEFAULT_MAX_ITEM_SIZE = 100 * 1024 * 1024;
/** kg CO₂e per GB not downloaded from the CDN (CarbonCost=) */
export const DEFAULT_CARBON_COST = 0.026367;
/** seconds a peer waits before asking for the same hash again (Cooldown=) */
export const DEFAULT_COOLDOWN = 3600;
/** seconds an item is kept (max-age) */
export const DEFAULT_MAX_AGE = 86400;
/** times an item may be served to other machines (share-limit) */
export const DEFAULT_SHARE_LIMIT = 5;
