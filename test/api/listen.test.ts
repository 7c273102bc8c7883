import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopback, parseAuthority, parseListen, resolveListen, TOKEN_ENV } from '../../server/api/listen.ts';

describe('listen address and token', () => {
  it('defaults to loopback 8080 without a token', () => {
    expect(resolveListen({ env: {} })).toEqual({ host: '127.0.0.1', port: 8080, token: undefined, allowHosts: [], warnings: [] });
  });

  it.each([
    ['127.0.0.1:9000', '127.0.0.1', 9000],
    ['[::1]:8081', '::1', 8081],
    ['localhost:80', 'localhost', 80],
    [':8082', '127.0.0.1', 8082],
    ['127.0.0.1:0', '127.0.0.1', 0],
  ])('parses %s', (spec, host, port) => {
    expect(parseListen(spec)).toEqual({ host, port });
  });

  it.each(['8080', 'host', 'host:', 'host:99999', 'host:123456', '[::1:80', 'a:b:80'])('refuses %s', (spec) => {
    expect(() => parseListen(spec)).toThrow(/--listen|port/);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.org', '10.0.0.1']) expect(isLoopback(h)).toBe(false);
  });

  it('requires a token beyond loopback', () => {
    expect(() => resolveListen({ listen: '0.0.0.0:8080', env: {} })).toThrow(/--token/);
    expect(resolveListen({ listen: '0.0.0.0:8080', token: 'x'.repeat(16), env: {} }).token).toBe('x'.repeat(16));
  });

  it('takes the token from the environment, the flag winning', () => {
    const env = { [TOKEN_ENV]: 'e'.repeat(20) };
    expect(resolveListen({ listen: '0.0.0.0:1', env }).token).toBe('e'.repeat(20));
    expect(resolveListen({ listen: '0.0.0.0:1', token: 'f'.repeat(20), env }).token).toBe('f'.repeat(20));
  });

  it('refuses a guessable token', () => {
    expect(() => resolveListen({ token: 'short', env: {} })).toThrow(/at least 16/);
  });
});

describe('token from a file (issue 10: --token is visible in ps)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string, mode = 0o600) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode); // explicit: the umask must not decide the test
    return path;
  };
  const T = 'a-token-from-a-file-0123456789';

  it('reads it without one trailing newline (\\n or \\r\\n), or none', () => {
    for (const [name, text] of [['lf', `${T}\n`], ['crlf', `${T}\r\n`], ['bare', T]] as const) {
      expect(resolveListen({ tokenFile: file(name, text), env: {} })).toMatchObject({ token: T, warnings: [] });
    }
  });

  it('refuses a token with more whitespace than one newline: no client could ever send it', () => {
    expect(() => resolveListen({ tokenFile: file('two', `${T}\n\n`), env: {} })).toThrow(/--token-file .*line breaks/);
    expect(() => resolveListen({ tokenFile: file('space', `${T} x\n`), env: {} })).toThrow(/spaces/);
    expect(() => resolveListen({ token: `${T} `, env: {} })).toThrow(/\(--token\) contains spaces/);
    expect(() => resolveListen({ env: { [TOKEN_ENV]: `${T}\n` } })).toThrow(new RegExp(`\\(${TOKEN_ENV}\\) contains`));
  });

  it('refuses a file every user can read, warns about one its group can read', () => {
    expect(() => resolveListen({ tokenFile: file('world', T, 0o644), env: {} })).toThrow(/every user.*chmod 600/);
    const group = resolveListen({ tokenFile: file('group', T, 0o640), env: {} });
    expect(group.token).toBe(T);
    expect(group.warnings).toEqual([expect.stringMatching(/read by its group.*chmod 600/)]);
  });

  it('says what is wrong with a missing file, a folder or a short token', () => {
    expect(() => resolveListen({ tokenFile: join(dir, 'nope'), env: {} })).toThrow(/--token-file .*nope: no such file/);
    expect(() => resolveListen({ tokenFile: dir, env: {} })).toThrow(/it is a folder/);
    expect(() => resolveListen({ tokenFile: file('short', 'short\n'), env: {} })).toThrow(/--token-file .* at least 16/);
  });

  it('takes one source: the file or the flag, either before the environment', () => {
    const env = { [TOKEN_ENV]: 'e'.repeat(20) };
    expect(() => resolveListen({ token: 'f'.repeat(20), tokenFile: file('both', T), env })).toThrow(/not both/);
    expect(resolveListen({ listen: '0.0.0.0:1', tokenFile: file('env', T), env }).token).toBe(T);
  });
});

describe('names the server answers to', () => {
  it('parses Host and Origin authorities', () => {
    expect(parseAuthority('Example.ORG.', 80)).toEqual({ name: 'example.org', port: 80 });
    expect(parseAuthority('[::1]:8080', 80)).toEqual({ name: '::1', port: 8080 });
    expect(parseAuthority('name', undefined)).toEqual({ name: 'name', port: undefined });
    for (const bad of ['', 'a:b:c', 'user@host', 'host:99999', 'a/b', 'a b', '[::1']) expect(parseAuthority(bad, 80), bad).toBeUndefined();
  });

  it('keeps --allow-host names and adds a --listen name', () => {
    expect(resolveListen({ allowHosts: ['crabwatt.example.org', 'meter.lan:8443'], env: {} }).allowHosts).toEqual(['crabwatt.example.org', 'meter.lan:8443']);
    expect(resolveListen({ listen: 'meter.lan:8080', token: 'x'.repeat(16), env: {} }).allowHosts).toEqual(['meter.lan']);
    expect(resolveListen({ listen: 'localhost:8080', env: {} }).allowHosts).toEqual([]);
    expect(() => resolveListen({ allowHosts: ['http://x/'], env: {} })).toThrow(/--allow-host 'http:\/\/x\/'/);
  });
});
