import { describe, expect, it } from 'vitest';
import { isLoopback, parseAuthority, parseListen, resolveListen, TOKEN_ENV } from '../../server/api/listen.ts';

describe('listen address and token', () => {
  it('defaults to loopback 8080 without a token', () => {
    expect(resolveListen({ env: {} })).toEqual({ host: '127.0.0.1', port: 8080, token: undefined, allowHosts: [] });
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
