"""Place and route last: under `npm test` those tests wait for the builds crabwatt.prebuild started
in the background, so every other gateware test runs first, while the routers work."""

PLACE_AND_ROUTE_FILES = ("test_build.py", "test_soc_build.py")


def pytest_collection_modifyitems(items):
    def waits_for_a_build(item):
        return item.path.name in PLACE_AND_ROUTE_FILES and "place_and_route" in item.name
    items.sort(key=waits_for_a_build)   # stable: the rest keep their order
