"""USB soak: N bytes each way through the SoC's CDC-ACM block and the line-level host model
(hdl/tests/usb_host.py), both directions interleaved as a host that polls IN while writing OUT.

    cd hdl && nice -n 10 ../build/venv/bin/python usb_soak.py [--bytes 10000] [--seed S]

IN: the SoC side writes COBS frames from test/vectors/frames (cycled) with no gaps; every frame
must arrive as one transfer (64-byte packets, a short packet or ZLP at its 0x00). OUT: random
bytes in 64-byte packets to a SoC side that is ready a random 50% of cycles; every byte must
arrive once, in order. Prints simulated time, throughput, NAKs, the slowest reply and the
simulator's speed. Not part of the test suite (minutes of CPU).
"""

import argparse
import json
import pathlib
import random
import resource
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / 'tests')]

from test_usb_cdc import (ADDRESS, BIT_CYCLES, DATA_EP, VECTORS, Harness, _configure,  # noqa: E402
                          _expected_packets, _host, _wait_for)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bytes', type=int, default=10_000, help='bytes each way (default 10000)')
    parser.add_argument('--seed', default='usb soak')
    args = parser.parse_args()
    if args.bytes < 64:
        parser.error('--bytes must be at least 64')
    rng = random.Random(args.seed)

    vectors = [bytes.fromhex(c['hex']) for c in json.loads(VECTORS.read_text())['cases']]
    frames, total = [], 0
    while total < args.bytes:
        frame = rng.choice(vectors)
        frames.append(frame)
        total += len(frame)
    in_data = b''.join(frames)
    expected = _expected_packets(frames)
    out_data = bytes(rng.randrange(256) for _ in range(args.bytes))

    h = Harness()
    state = {'configured': False, 'received': bytearray(), 'done': False}
    stats = {}

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        state['configured'] = True
        start = host.now
        packets, in_naks, out_naks, sent = [], 0, 0, 0
        in_done_at = out_done_at = None
        while len(packets) < len(expected) or sent < len(out_data):
            if len(packets) < len(expected):
                payload = await host.in_transaction(ADDRESS, DATA_EP)
                if payload is None:
                    in_naks += 1
                else:
                    packets.append(payload)
                    if len(packets) == len(expected):
                        in_done_at = host.now
            if sent < len(out_data):
                if await host.out_transaction(ADDRESS, DATA_EP, out_data[sent:sent + 64]):
                    sent += 64
                    if sent >= len(out_data):
                        out_done_at = host.now
                else:
                    out_naks += 1
            if in_naks + out_naks > 200_000:
                raise RuntimeError('stuck: too many NAKs')
        await _wait_for(host, lambda: len(state['received']) >= len(out_data))
        await host.idle(400)
        state['done'] = True
        stats.update(packets=packets, in_naks=in_naks, out_naks=out_naks, start=start,
                     in_done=in_done_at, out_done=out_done_at, end=host.now,
                     worst_gap=host.worst_gap_bits, gaps=host.reply_gaps, sofs=host.sofs_sent)

    async def soc_tx(ctx):
        while not state['configured']:
            await ctx.tick('usb')
        for byte in in_data:
            ctx.set(h.tx.payload, byte)
            ctx.set(h.tx.valid, 1)
            await ctx.tick('usb').until(h.tx.ready)
        ctx.set(h.tx.valid, 0)

    async def soc_rx(ctx):
        while not state['done']:
            ready = rng.random() < 0.5
            ctx.set(h.rx.ready, ready)
            _, _, valid, payload = await ctx.tick('usb').sample(h.rx.valid, h.rx.payload)
            if ready and valid:
                state['received'].append(payload)

    wall, cpu = time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
    h.run(host_bench, soc_tx, soc_rx)
    wall, cpu = time.time() - wall, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu

    ok_in = stats['packets'] == expected
    ok_out = bytes(state['received']) == out_data
    ms = lambda samples: samples / 48_000
    in_ms, out_ms = ms(stats['in_done'] - stats['start']), ms(stats['out_done'] - stats['start'])
    print(f'IN : {len(in_data)} bytes in {len(frames)} frames, {len(expected)} packets, '
          f'{stats["in_naks"]} NAKs, {in_ms:.2f} ms simulated -> {len(in_data) / in_ms:.0f} B/ms '
          f'({"intact" if ok_in else "MISMATCH"})')
    print(f'OUT: {len(out_data)} bytes, {stats["out_naks"]} NAKs, {out_ms:.2f} ms simulated -> '
          f'{len(out_data) / out_ms:.0f} B/ms ({"intact" if ok_out else "MISMATCH"})')
    print(f'both directions interleaved on one bus; {stats["sofs"]} SOFs; reply delay (bit times): '
          + ', '.join(f'{k} {min(v):.2f}..{max(v):.2f}' for k, v in sorted(stats['gaps'].items())))
    cycles = stats['end']
    print(f'simulated {ms(cycles):.2f} ms = {cycles} usb_io cycles in {cpu:.0f} s CPU ({wall:.0f} s wall): '
          f'{cycles / cpu:.0f} cycles per CPU-second')
    return 0 if ok_in and ok_out else 1


if __name__ == '__main__':
    sys.exit(main())
