/** What the real-apt tests need on the machine; a skip reason naming the Debian packages when missing. */
import { requires } from '../helpers/requires.js';

/** false when apt-get, dpkg-deb and dpkg-scanpackages are there; else the reason to skip. */
export async function canRun(): Promise<false | string> {
  return requires('apt-get', 'dpkg-deb', 'dpkg-scanpackages');
}
