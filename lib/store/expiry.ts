/** When an item is past its max-age. Age counts from the publish time; maxAge 0 never expires. */
import type { ItemInfo } from './types.js';

export function isExpired(item: Pick<ItemInfo, 'maxAge' | 'created' | 'static'>, nowMs: number): boolean {
  if (item.static || item.maxAge <= 0) return false;
  return nowMs - item.created > item.maxAge * 1000;
}
