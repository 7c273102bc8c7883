"""A control transfer the host abandons (crabwatt.soc.usb_serial `_usb_serial`, the standard handler's abort).

USB 2.0 8.5.3: a SETUP aborts whatever control transfer is in progress, and a bus reset ends every
one. Linux abandons descriptor reads when one goes wrong and resets the port to retry; its
USBDEVFS_RESET did so to the USB twin (bash hdl/run.sh linux-usb), where LUNA's standard handler, still
in the abandoned GET_DESCRIPTOR, answered the next request from the old offset with the old toggle
(a STALL, then a data packet with PID byte 0x00 in place of a handshake). The harness and host model
are test_usb_cdc's; both tests fail without the abort (DATA0 where DATA1 is due)."""

from test_usb_cdc import ADDRESS, RESET_SE0_CYCLES, Harness, _configure, _host

GET_CONFIGURATION_DESCRIPTOR_255 = bytes([0x80, 6, 0x00, 0x02, 0, 0, 255, 0])
DEVICE_DESCRIPTOR_LENGTH = 18


async def _abandon_configuration_read(host):
    """A host's GET_DESCRIPTOR(configuration, 255) that takes the first 64-byte packet and no more."""
    await host.setup(ADDRESS, GET_CONFIGURATION_DESCRIPTOR_255)
    first = await host.in_transaction(ADDRESS, 0)
    assert first is not None and len(first) == 64, 'the configuration descriptor spans two packets'
    await host.idle(200)


def test_bus_reset_abandons_a_descriptor_read():
    h = Harness()
    state = {}

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        await _abandon_configuration_read(host)
        await host.bus_reset(RESET_SE0_CYCLES)
        await host.idle(200)
        state['device'] = await host.control_read(0, 0x80, 6, 0x0100, 0, 64)

    h.run(host_bench)
    device = state['device']
    assert len(device) == DEVICE_DESCRIPTOR_LENGTH and device[:2] == bytes([18, 1])


def test_setup_abandons_a_descriptor_read():
    h = Harness()
    state = {}

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        await _abandon_configuration_read(host)
        state['device'] = await host.control_read(ADDRESS, 0x80, 6, 0x0100, 0, 64)
        # and the transfer after a completed one still starts at the descriptor's first byte
        state['again'] = await host.control_read(ADDRESS, 0x80, 6, 0x0100, 0, 64)

    h.run(host_bench)
    assert state['device'] == state['again']
    assert len(state['device']) == DEVICE_DESCRIPTOR_LENGTH and state['device'][:2] == bytes([18, 1])
