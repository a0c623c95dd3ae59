"""The dashboard on a fake cluster with a frozen clock: Pilot interaction tests and SVG
snapshots at a fixed size (update them with --snapshot-update after a deliberate change)."""

from __future__ import annotations

import asyncio
import math

import pytest
from textual.widgets import TabbedContent

from console.config import ClusterSettings
from console.dashboard.action_screen import ActionScreen
from console.dashboard.app import Dashboard
from console.dashboard.fake_cluster import FakeCluster, FakeSource
from console.dashboard.node_detail import NodeDetailScreen
from console.dashboard.row_table import RowTable
from console.dashboard.slot_grid import SlotGrid

SIZE = (120, 34)
STALE = "127.0.0.1:7005"


def make_app(read_only: bool = False, **fake: object) -> Dashboard:
    cluster = FakeCluster(
        migration_percent=fake.get("migration_percent", 40),  # type: ignore[arg-type]
        failover=True,
        stale={STALE},
        leader=fake.get("leader"),  # type: ignore[arg-type]
    )
    # a long interval: each test decides when a new sample comes (r)
    return Dashboard(FakeSource(cluster), ClusterSettings(name="demo"), interval=3600,
                     read_only=read_only, theme="textual-dark")  # fmt: skip


async def settle(pilot: object) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    for _ in range(200):
        if app.samples_shown:
            break
        await asyncio.sleep(0.01)
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.mark.parametrize("tab", ["1", "2", "3", "4", "5"])
def test_snapshot_every_tab(snap_compare: object, tab: str) -> None:
    async def before(pilot: object) -> None:
        await settle(pilot)
        if tab == "2":  # a second sample: the proxies' ops per slot have a rate
            app = pilot.app  # type: ignore[attr-defined]
            await pilot.press("r")  # type: ignore[attr-defined]
            for _ in range(200):
                if app.samples_shown > 1:
                    break
                await asyncio.sleep(0.01)
        await pilot.press(tab)  # type: ignore[attr-defined]
        await pilot.pause()  # type: ignore[attr-defined]

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)  # type: ignore[operator]


def test_snapshot_confirm_dialog(snap_compare: object) -> None:
    async def before(pilot: object) -> None:
        await settle(pilot)
        pilot.app.open_action("pause")  # type: ignore[attr-defined]
        await pilot.pause()  # type: ignore[attr-defined]
        await pilot.press("enter")  # type: ignore[attr-defined]
        for _ in range(3000):  # the preview reads afresh; a loaded machine takes seconds
            if pilot.app.screen.stage == "confirm":  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        await pilot.pause()  # type: ignore[attr-defined]

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)  # type: ignore[operator]


def test_tabs_stale_node_failover_and_migration() -> None:
    async def run() -> None:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            sample = app.sample
            assert sample is not None and sample.nodes[STALE].stale
            await pilot.press("4")  # a tab is drawn when shown
            nodes = app.query_one("#nodes")
            assert "stale" in str(nodes.get_row(STALE)[2])  # type: ignore[attr-defined]
            await pilot.press("1")
            groups = app.query_one("#groups")
            assert "moving" in str(groups.get_row("2")[3])  # type: ignore[attr-defined]
            await pilot.press("5")
            events = app.query_one("#events")
            assert "promoted" in str(events.get_row("e4")[2])  # type: ignore[attr-defined]
            await pilot.press("2")
            panel = app.query_one("#task-m12-1")
            assert "40%" in str(panel.query_one(".task-line").render())
            # the filter keeps only matching events
            await pilot.press("/")
            await pilot.press(*"failover")
            await pilot.pause()
            assert events.row_count == 1  # type: ignore[attr-defined]
            # pause: r still takes one sample, and the clock moved 2 s
            await pilot.press("escape", "1", "p")
            shown = app.samples_shown
            await pilot.press("r")
            for _ in range(200):
                if app.samples_shown > shown:
                    break
                await asyncio.sleep(0.01)
            assert app.paused and app.sample.ts == sample.ts + 2.0  # type: ignore[union-attr]
            await pilot.press("q")
        assert app.return_code in (0, None)

    asyncio.run(run())


def test_node_detail_and_cli_session() -> None:
    async def run() -> None:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_detail("127.0.0.1:7002")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, NodeDetailScreen)
            for _ in range(200):
                if "HGETALL" in str(screen.query_one("#slowlog").render()):
                    break
                await asyncio.sleep(0.01)
            assert "15.3 ms" in str(screen.query_one("#slowlog").render())
            assert "SET k4 v4" in str(screen.query_one("#binlog").render())
            screen.query_one(TabbedContent).active = "d-cli"
            await pilot.pause()
            # the prompt has the focus: typed keys go to it, not to the app's bindings
            # ("1" would switch the tab behind, "q" quit)
            assert screen.focused is screen.query_one("#cli-input")

            def log_text() -> str:
                return "\n".join(str(s.text) for s in screen.query_one("#cli-log").lines)

            async def wait_for(text: str) -> None:
                for _ in range(200):
                    if text in log_text():
                        return
                    await asyncio.sleep(0.01)
                raise AssertionError(f"{text!r} not in the session: {log_text()!r}")

            await pilot.press(*"ping1q", "enter")
            await wait_for("(error) the fake cluster does not answer ping1q")
            assert isinstance(app.screen, NodeDetailScreen)
            await pilot.press(*"PING", "enter")
            await wait_for("PONG")
            # FLUSHALL asks first, as ledis-cli does; anything but y leaves it unrun
            await pilot.press(*"flushall", "enter")
            await wait_for("This removes every key of every database. Continue? (y/N)")
            await pilot.press("n", "enter")
            await wait_for("(not run) flushall")
            await pilot.press(*"flushall", "enter", "y", "enter")
            await wait_for("does not answer flushall")
            suggestion = await screen.query_one("#cli-input").suggester.get_suggestion("GETD")  # type: ignore[union-attr]
            assert suggestion == "GETDEL"
            await pilot.press("escape")
            assert not isinstance(app.screen, NodeDetailScreen)

    asyncio.run(run())


def test_confirm_needs_the_typed_name_and_read_only_hides_actions() -> None:
    async def run() -> None:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.check_action("actions", ()) is True
            app.open_action("migrate", {"slots": "0-9", "target": "3"})
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ActionScreen)
            await pilot.press("enter")
            for _ in range(200):
                if screen.stage == "confirm":
                    break
                await asyncio.sleep(0.01)
            assert "migrate 10 slots (0-9) to group 3" in str(
                screen.query_one("#action-preview").render()
            )
            await pilot.press(*"migrat", "enter")
            await pilot.pause()
            assert screen.stage == "confirm"  # not the name: nothing applied
            assert "exactly" in str(screen.query_one("#action-status").render())
            await pilot.press("escape")
        ro = make_app(read_only=True)
        async with ro.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert ro.check_action("actions", ()) is False  # not in the footer at all
            titles = [c.title for c in ro.get_system_commands(ro.screen)]
            assert "Migrate slots" not in titles and "Show slots" in titles
            assert not any("Switch over" in t for t in titles)
            ro.open_action("migrate")
            await pilot.pause()
            assert not isinstance(ro.screen, ActionScreen)

    asyncio.run(run())


def test_failover_action_previews_the_switchover_plan_and_needs_its_name() -> None:
    async def run() -> None:
        app = make_app(leader="ctl-1")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.open_action("failover", {"group": "1", "to": ""})
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ActionScreen)
            await pilot.press("enter", "enter")  # group, then the empty node: the preview
            for _ in range(200):
                if screen.stage == "confirm":
                    break
                await asyncio.sleep(0.01)
            preview = str(screen.query_one("#action-preview").render())
            # the same plan lines ledis-console failover prints (stack/failover/switchover.py)
            assert "switch over group 1 from 127.0.0.1:7002 to 127.0.0.1:7003" in preview
            assert "fence 127.0.0.1:7002 at epoch 10" in preview
            assert "carried out by the leading controller (ctl-1)" in preview
            await pilot.press(*"failove", "enter")
            await pilot.pause()
            assert screen.stage == "confirm"  # not the name: nothing recorded
            assert "exactly" in str(screen.query_one("#action-status").render())
            await pilot.press("escape")
            # a stale replica cannot take over; the reason is shown, no plan
            app.open_action("failover", {"group": "2", "to": STALE})
            await pilot.pause()
            screen = app.screen
            await pilot.press("enter")
            for _ in range(200):
                if "cannot take over" in str(screen.query_one("#action-status").render()):
                    break
                await asyncio.sleep(0.01)
            assert f"{STALE} cannot take over" in str(screen.query_one("#action-status").render())
            assert screen.stage == "form"  # type: ignore[attr-defined]
        leaderless = make_app()
        async with leaderless.run_test(size=SIZE) as pilot:
            await settle(pilot)
            leaderless.open_action("failover", {"group": "1", "to": ""})
            await pilot.pause()
            screen = leaderless.screen
            await pilot.press("enter", "enter")
            for _ in range(200):
                if "no controller leads" in str(screen.query_one("#action-status").render()):
                    break
                await asyncio.sleep(0.01)
            assert "no controller leads" in str(screen.query_one("#action-status").render())

    asyncio.run(run())


def test_row_table_cursor_selection_and_redraws() -> None:
    """The node tables (RowTable): keys and clicks move the cursor, Enter or a second click
    opens the row's node, the cursor follows its row's key when rows move, and a refresh that
    changes one row makes only that row's line again."""

    async def run() -> None:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("4", "down", "down")
            table = app.query_one("#nodes", RowTable)
            assert table.selected_key == "127.0.0.1:7004"
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, NodeDetailScreen) and app.screen.addr == "127.0.0.1:7004"
            await pilot.press("escape")
            await pilot.click("#nodes", offset=(2, 2))  # the header is line 0: row 1
            assert table.selected_key == "127.0.0.1:7003"
            await pilot.click("#nodes", offset=(2, 2))
            await pilot.pause()
            assert isinstance(app.screen, NodeDetailScreen) and app.screen.addr == "127.0.0.1:7003"
            await pilot.press("escape", "end")
            assert table.cursor_row == table.row_count - 1

            rows = [("a", ["a", "1"]), ("b", ["b", "2"]), ("c", ["c", "3"])]
            table.set_rows(rows)
            table.move_cursor(1)
            await pilot.pause()
            lines = [table.render_line(y) for y in range(1, 4)]
            assert [s.text.split()[0] for s in lines] == ["a", "b", "c"]
            table.set_rows([("a", ["a", "1"]), ("b", ["b", "2"]), ("c", ["c", "30"])])
            again = [table.render_line(y) for y in range(1, 4)]
            assert again[0] is lines[0] and again[1] is lines[1] and again[2] is not lines[2]
            assert again[2].text.split() == ["c", "30"]
            # rows move: the cursor stays on b; b gone: it stays at its place
            table.set_rows([("b", ["b", "2"]), ("a", ["a", "1"])])
            assert (table.cursor_row, table.selected_key) == (0, "b")
            table.set_rows([("a", ["a", "1"]), ("c", ["c", "3"])])
            assert (table.cursor_row, table.selected_key) == (0, "a")
            assert table.get_row("c") == ["c", "3"] and table.row_count == 2

    asyncio.run(run())


def test_slot_shade_toggles_between_ops_per_slot_and_keys_per_group() -> None:
    async def run() -> None:
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.check_action("heat", ()) is False  # only on the slots tab
            await pilot.press("r")  # a second sample: the proxies' first rates
            for _ in range(200):
                if app.sample is not None and app.sample.slot_ops is not None:
                    break
                await asyncio.sleep(0.01)
            await pilot.press("2")
            grid = app.query_one(SlotGrid)
            width = grid.content_size.width

            def shown() -> tuple[str, str]:
                lines = [grid.render_line(y).text for y in range(grid.rows_for(width) + 1)]
                return "".join(lines[:-1]), lines[-1]

            cells, legend = shown()
            assert app.check_action("heat", ()) is True
            assert "shade = ops/s per slot (proxies), █ 417/s a cell" in legend
            # the hot slot 12000 (400/s from the one proxy) is the one darkest cell
            per = math.ceil(16384 / len(cells))
            assert cells.count("█") == 1 and cells.index("█") == 12000 // per
            assert cells[1200 // per] == "▓" and cells[5000 // per] == "▒"  # warm, a little
            await pilot.press("h")
            cells, legend = shown()
            assert "shade = keys per slot of the group" in legend
            assert cells.count("█") > 1000  # the densest group's slots all at the top shade
            await pilot.press("h")
            assert "ops/s per slot" in shown()[1]

    asyncio.run(run())


def test_failover_dialog_reads_the_cluster_when_it_opens_not_the_last_poll() -> None:
    async def run() -> None:
        app = make_app(leader="ctl-1")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            fake = app.source.cluster  # type: ignore[attr-defined]
            shown = app.samples_shown
            # after the last poll: 7003 stops answering, the stale 7005 comes back
            fake.stale = {"127.0.0.1:7003"}
            assert app.sample is not None and not app.sample.nodes["127.0.0.1:7003"].stale

            async def preview(group: str, to: str) -> str:
                app.open_action("failover", {"group": group, "to": to})
                await pilot.pause()
                screen = app.screen
                await pilot.press("enter", "enter")
                for _ in range(200):
                    if screen.stage == "confirm" or "cannot" in str(  # type: ignore[attr-defined]
                        screen.query_one("#action-status").render()
                    ):
                        break
                    await asyncio.sleep(0.01)
                text = f"{screen.query_one('#action-status').render()}\n{screen.query_one('#action-preview').render()}"
                await pilot.press("escape")
                return text

            assert "127.0.0.1:7003 cannot take over" in await preview("1", "127.0.0.1:7003")
            assert "switch over group 2 from 127.0.0.1:7004 to 127.0.0.1:7005" in await preview(
                "2", "127.0.0.1:7005"
            )
            assert app.samples_shown == shown  # no poll in between: the dialogs read on their own

    asyncio.run(run())
