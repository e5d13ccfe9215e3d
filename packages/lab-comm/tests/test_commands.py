"""``@command``: the options mean what the method's signature says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

import pytest

from lab_utils.socket_comm import Client, Server, command


class Instrument(Server):
    @command
    def configure(
        self,
        fast: bool = True,
        verbose: bool = False,
        n: int | None = None,
        gain: Optional[float] = None,  # noqa: UP045 - the spelling older daemons use
        label: str = "run",
    ) -> str:
        """Configure the acquisition.

        Parameters
        ----------
        fast : bool
            Sample at the fast rate.
        verbose : bool
            Log every reading.
        n : int, optional
            Readings to average,
            counted per channel.
        gain, label
            Amplifier gain and run label.
        """
        return repr((fast, verbose, n, gain, label))

    @command
    def mode(self, mode: Literal["slow", "fast"] = "slow", range_: Literal[1, 10] = 1) -> str:
        """Pick the mode.

        :param mode: the sampling mode
        :param range_: the input range in volts
        """
        return repr((mode, range_))

    @command
    def scan(self, volts: list[float], channels: list[int] | None = None) -> str:
        """Scan voltages."""
        return repr((volts, channels))

    @command(name="load")
    def load_curve(self, path: Path, kelvin: float) -> str:
        """Load a calibration curve."""
        return repr((path, kelvin))

    @command
    def arm(self, armed: bool) -> str:
        """Arm or disarm the trigger."""
        return repr(armed)


@pytest.fixture
def instrument(tmp_path: Path) -> Iterator[Instrument]:
    server = Instrument(pid_file_name=str(tmp_path / "instrument.pid"), host="127.0.0.1", port=0)
    yield server
    server.close()


def test_a_bool_with_a_default_keeps_it_when_omitted(instrument: Instrument) -> None:
    assert instrument.execute("configure") == "(True, False, None, None, 'run')"


def test_a_bool_becomes_flag_and_no_flag(instrument: Instrument) -> None:
    assert instrument.execute("configure --no-fast --verbose").startswith("(False, True,")
    assert instrument.execute("configure --fast --no-verbose").startswith("(True, False,")


def test_a_bool_without_default_is_a_required_flag_pair(instrument: Instrument) -> None:
    assert instrument.execute("arm --arm") == "True"
    assert instrument.execute("arm --no-arm") == "False"
    assert instrument.execute("arm").startswith("Error! ")


def test_optional_unwraps_to_the_inner_type(instrument: Instrument) -> None:
    assert instrument.execute("configure --n 3 --gain 2.5") == "(True, False, 3, 2.5, 'run')"
    assert instrument.execute("configure --n three").startswith("Error! ")


def test_literal_gives_choices_of_its_type(instrument: Instrument) -> None:
    assert instrument.execute("mode") == "('slow', 1)"
    assert instrument.execute("mode --mode fast --range- 10") == "('fast', 10)"
    refused = instrument.execute("mode --mode turbo")
    assert refused.startswith("Error! ")
    assert "invalid choice" in refused.splitlines()[0]


def test_a_list_takes_several_values(instrument: Instrument) -> None:
    assert instrument.execute("scan --volts 1 2.5 -3") == "([1.0, 2.5, -3.0], None)"
    assert instrument.execute("scan --volts 1 --channels 4 5") == "([1.0], [4, 5])"
    assert instrument.execute("scan").startswith("Error! ")


def test_required_values_are_typed_and_named_commands_work(instrument: Instrument) -> None:
    reply = instrument.execute("load --path {/curves/x 1.340} --kelvin 4.2")
    assert reply == repr((Path("/curves/x 1.340"), 4.2))
    assert instrument.execute("load --path /x").startswith("Error! ")


def test_docstring_descriptions_become_option_help(instrument: Instrument) -> None:
    text = instrument.parser.full_help()
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("        --")}
    assert "Sample at the fast rate. (--fast/--no-fast; default on)" in lines["--fast"]
    assert "Readings to average, counted per channel. (int)" in lines["--n"]
    assert "Amplifier gain and run label. (float)" in lines["--gain"]
    assert "Amplifier gain and run label. (str; default run)" in lines["--label"]
    assert "the sampling mode (one of slow, fast; default slow)" in lines["--mode"]
    assert lines["--volts"].endswith("  one or more float; required")
    assert lines["--path"].endswith("  path; required")
    assert "configure" in text
    assert "Configure the acquisition." in text


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("dict[str, int]", "has no option form"),
        ("int | str", "only X | None"),
        ("Literal['a', 1]", "must all be str, all int or all float"),
        ("Undefined", "not defined yet"),
    ],
)
def test_an_unsupported_annotation_fails_when_the_class_is_defined(
    annotation: str, message: str
) -> None:
    namespace: dict[str, object] = {}
    source = (
        "from typing import Literal\n"
        "from lab_utils.socket_comm import Server, command\n"
        "class Broken(Server):\n"
        "    @command\n"
        f"    def bad(self, value: {annotation}) -> str:\n"
        "        return ''\n"
    )
    with pytest.raises(TypeError, match=message) as raised:
        exec(compile(source, "<daemon>", "exec"), namespace)
    assert "Broken.bad" in str(raised.value)
    assert "'value'" in str(raised.value)


def test_parameters_without_an_option_form_fail_at_definition() -> None:
    with pytest.raises(TypeError, match="no option form"):

        class Star(Server):
            @command
            def many(self, *values: str) -> str:
                return ""

    with pytest.raises(TypeError, match="clash with the command dispatch"):

        class Reserved(Server):
            @command
            def pick(self, which: str) -> str:
                return which


def test_typed_options_arrive_over_the_wire(tmp_path: Path) -> None:
    server = Instrument(pid_file_name=str(tmp_path / "wire.pid"), host="127.0.0.1", port=0)
    with server.start_in_thread() as running:
        client = Client(host="127.0.0.1", port=running.address, timeout=30)
        assert client.send_message("configure --no-fast --n 3") == "(False, False, 3, None, 'run')"
        assert client.send_message("scan --volts 0.5 1") == "([0.5, 1.0], None)"
