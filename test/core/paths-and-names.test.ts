import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvePaths } from '../../lib/core/paths.js';
import { validateBasename, isValidBasename } from '../../lib/core/basename.js';
import { InvalidNameError, errorFromCode, NotFoundError, ChecksumMismatchError } from '../../lib/core/errors.js';

test('root gets system paths, others XDG paths', () => {
  const root = resolvePaths({}, { HOME: '/root' }, true);
  assert.deepEqual(root, { stateDir: '/var/lib/passim', configDir: '/etc', socketPath: '/run/passim/passim.sock' });
  const user = resolvePaths({}, { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' }, false);
  assert.deepEqual(user, {
    stateDir: '/home/u/.local/state/passim',
    configDir: '/home/u/.config/passim',
    socketPath: '/run/user/1000/passim.sock',
  });
  const noRuntime = resolvePaths({}, { HOME: '/home/u', XDG_STATE_HOME: '/s' }, false);
  assert.equal(noRuntime.stateDir, '/s/passim');
  assert.equal(noRuntime.socketPath, '/s/passim/passim.sock');
});

test('flags beat env, env beats defaults', () => {
  const env = { HOME: '/h', PASSIM_STATE_DIR: '/env/state', PASSIM_CONFIG_DIR: '/env/conf', PASSIM_SOCKET: '/env/sock' };
  assert.deepEqual(resolvePaths({}, env, true), { stateDir: '/env/state', configDir: '/env/conf', socketPath: '/env/sock' });
  assert.deepEqual(resolvePaths({ stateDir: '/f/s', configDir: '/f/c', socketPath: '/f/k' }, env, true), {
    stateDir: '/f/s', configDir: '/f/c', socketPath: '/f/k',
  });
});

test('basenames that could escape the store or confuse tools are rejected', () => {
  for (const bad of ['', '.', '..', 'a/b', '../x', 'x\u0000y', 'tab\there', 'nl\n', 'x'.repeat(191), '\ud800']) {
    assert.throws(() => validateBasename(bad), InvalidNameError, JSON.stringify(bad));
  }
  for (const ok of ['firmware.cab', 'repomd.xml.zst', 'a-b-c', '..hidden', 'ünïcödé.bin', 'x'.repeat(190)]) {
    assert.equal(validateBasename(ok), ok);
  }
  assert.equal(isValidBasename('a/b'), false);
});

test('errors carry stable codes and exit codes, and rebuild from their code', () => {
  const e = errorFromCode('PASSIM_NOT_FOUND', 'no such item');
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.exitCode, 3);
  assert.equal(new ChecksumMismatchError('a', 'b').exitCode, 4);
  assert.equal(errorFromCode('PASSIM_INVALID_HASH', 'x').exitCode, 2);
});
