"""The live cockpit: a Textual app that renders ``Snapshot``s on a timer.

Entry points (imported from their modules, so ``import flightdeck.cockpit``
stays free of Textual for commands that never draw):

- ``flightdeck.cockpit.app.run_cockpit(feed, *, theme=None) -> int``
- ``flightdeck.cockpit.app.FlightdeckApp(feed, *, theme=None, clock=time.time, refresh_interval=0.25)``
- ``flightdeck.cockpit.feed.Feed``: the protocol the app needs (the ingest ``Engine`` is one)
- ``flightdeck.cockpit.themes.load_themes()``: theme files from the shipped, source and user folders
- ``flightdeck.cockpit.testing.FakeFeed`` / ``sample_snapshot()``: fixed data for tests and demos
"""
