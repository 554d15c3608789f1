"""Alerts to a real mosquitto broker, a local HTTP server (fine, slow, failing, absent) and a command."""
import json

import numpy as np
import pytest

from streamtag.errors import ConfigError
from streamtag.outputs.alerts import (
    AlertHub,
    ExecAlerts,
    MqttAlerts,
    WebhookAlerts,
    destination,
    slug,
)
from streamtag.outputs.monitor import Monitor
from tests.outputs.monitor_helpers import RATE, demo_audio, run, tagger
from tests.outputs.services import Recorder, Webhook, free_port


@pytest.fixture(scope="module")
def demo():
    return tagger(), demo_audio()


def check_events(recorder, topic, detections):
    """One start and one end message per detection, each start before its end, with the event's fields."""
    events = [json.loads(p) for p in recorder.on(f"{topic}/events")]
    assert sorted((e["type"], e["label"]) for e in events) == sorted(
        [("start", d.label) for d in detections] + [("end", d.label) for d in detections])
    for label in {d.label for d in detections}:
        mine = [e for e in events if e["label"] == label]
        theirs = [d for d in detections if d.label == label]
        assert [e["type"] for e in mine] == ["start", "end"] * len(theirs)
        for d, start, end in zip(theirs, mine[::2], mine[1::2]):
            assert end["onset_s"] == round(d.onset_s, 3) and end["offset_s"] == round(d.offset_s, 3)
            assert start["onset_s"] == round(d.onset_s, 3) and 0 < start["score"] <= 1


def test_mqtt_messages_discovery_and_availability(demo, broker, tmp_path):
    t, audio = demo
    rec = Recorder(broker.port)
    mqtt = MqttAlerts(f"mqtt://127.0.0.1:{broker.port}/garden", labels=["Dog"])
    mon = Monitor(t.labels, source="demo", alerts=AlertHub([mqtt]))
    run(t, audio, mon)
    dets = mon.stats.detections
    assert dets and mon.stats.dropped_alerts == 0
    assert rec.wait_for(lambda: len(rec.on("garden/events")) >= 2 * len(dets))
    check_events(rec, "garden", dets)
    assert rec.wait_for(lambda: rec.on("garden/availability")[-1:] == ["offline"])
    assert rec.on("garden/availability")[0] == "online"
    for label in {d.label for d in dets} | {"Dog"}:
        configs = rec.on(f"homeassistant/binary_sensor/streamtag/{slug(label)}/config")
        assert configs, label
        config = json.loads(configs[-1])
        assert config["state_topic"] == f"garden/{slug(label)}/state"
        assert config["availability_topic"] == "garden/availability" and config["name"] == label
        assert config["unique_id"] == f"streamtag_{slug(label)}"
    for d in dets:
        assert rec.on(f"garden/{slug(d.label)}/state")[-2:] == ["ON", "OFF"]
        assert json.loads(rec.on(f"garden/{slug(d.label)}/attributes")[-1])["last_score"] == round(d.peak, 4)
    rec.close()
    late = Recorder(broker.port)  # retained: a new subscriber sees the discovery and the availability
    assert late.wait_for(lambda: late.on("garden/availability") == ["offline"])
    assert late.on("homeassistant/binary_sensor/streamtag/dog/config")
    late.close()


def test_broker_stopped_mid_run_the_pipeline_keeps_pace_and_alerts_resume(demo, broker):
    t, audio = demo
    loop = np.concatenate([audio, audio])
    rec = Recorder(broker.port)
    mqtt = MqttAlerts(f"mqtt://127.0.0.1:{broker.port}/st")
    mon = Monitor(t.labels, source="live", alerts=AlertHub([mqtt]))
    state = {"stopped": False, "restarted": False}

    def outage(at_s):
        if at_s >= 3.0 and not state["stopped"]:
            broker.stop()
            state["stopped"] = True
        if at_s >= 14.0 and not state["restarted"]:
            broker.start()
            state["restarted"] = True

    results, stats = run(t, loop, mon, live=True, speed=2.0, on_window=outage)
    assert state["restarted"] and stats.lost_samples == 0
    assert len(results) == int(np.ceil((len(loop) / RATE - 1) / 0.5)) + 1
    latencies = [r.latency_s for r in results if r.latency_s is not None]
    assert np.percentile(latencies, 95) <= 0.05 * 2  # pushed at 2x real time: half a window's pace
    dets = mon.stats.detections
    assert rec.wait_for(lambda: len(rec.on("st/events")) >= 2 * len(dets), 15)
    check_events(rec, "st", dets)
    assert mon.stats.dropped_alerts == 0
    assert "online" in rec.on("st/availability")
    rec.close()


@pytest.mark.slow  # real time (15-27 s): runs in the full suite, not in the fresh clone's quick pass
def test_a_full_queue_drops_and_counts_and_never_blocks(demo):
    t, audio = demo
    hook = Webhook("slow", delay_s=10.0)
    dead = MqttAlerts(f"mqtt://127.0.0.1:{free_port()}/x", max_queue=2)
    slow = WebhookAlerts(hook.url, timeout_s=10.0, retries=0, max_queue=2)
    hub = AlertHub([dead, slow])
    mon = Monitor(t.labels, source="live", alerts=hub)
    audio3 = np.concatenate([audio] * 3)
    results, stats = run(t, audio3, mon, live=True, speed=3.0)
    assert stats.lost_samples == 0
    assert np.percentile([r.latency_s for r in results], 95) <= 0.05
    n = 2 * len(mon.stats.detections)  # start and end messages per destination
    assert n > 6
    for d in (dead, slow):
        assert d.dropped >= n - 3 and d.sent + d.failed + d.dropped == n, d.name
    assert mon.stats.dropped_alerts == dead.dropped + slow.dropped
    hook.close()


def test_webhook_delivers_retries_and_counts_failures(demo):
    t, audio = demo
    ok, failing = Webhook("ok"), Webhook("error")
    good = WebhookAlerts(ok.url)
    bad = WebhookAlerts(failing.url, retries=2, backoff_s=0.01)
    absent = WebhookAlerts(f"http://127.0.0.1:{free_port()}/none", retries=1, backoff_s=0.01, timeout_s=1)
    mon = Monitor(t.labels, source="demo", alerts=AlertHub([good, bad, absent], labels=["Dog", "Speech"]))
    run(t, audio, mon)
    watched = [d for d in mon.stats.detections if d.label in ("Dog", "Speech")]
    assert watched and len(watched) < len(mon.stats.detections)
    assert sorted((p["type"], p["label"]) for p in ok.posts) == sorted(
        [(k, d.label) for d in watched for k in ("start", "end")])
    assert good.sent == 2 * len(watched) and good.failed == 0
    assert bad.failed == 2 * len(watched) and failing.attempts == 3 * 2 * len(watched)
    assert absent.failed == 2 * len(watched) and absent.sent == 0
    ok.close()
    failing.close()


def test_exec_gets_the_event_in_its_environment_and_cooldown_holds_repeats(demo, tmp_path):
    t, audio = demo
    out = tmp_path / "exec.log"
    cmd = ExecAlerts(f"sh -c 'echo \"$STREAMTAG_TYPE|$STREAMTAG_LABEL|$STREAMTAG_EVENT\" >> {out}'")
    twice = np.concatenate([audio, audio])
    hub = AlertHub([cmd], labels=["Dog"], cooldown_s=1000.0)
    mon = Monitor(t.labels, source="demo", alerts=hub)
    run(t, twice, mon)
    dogs = [d for d in mon.stats.detections if d.label == "Dog"]
    assert len(dogs) == 2 and hub.suppressed == 1  # the second dog is within the cooldown
    lines = [line.split("|", 2) for line in out.read_text().splitlines()]
    assert [(k, lbl) for k, lbl, _ in lines] == [("start", "Dog"), ("end", "Dog")]
    assert json.loads(lines[1][2])["offset_s"] == round(dogs[0].offset_s, 3)


@pytest.mark.parametrize("url", ["ftp://x", "mqtt://", "exec:", "http://"])
def test_bad_alert_urls_are_refused(url):
    with pytest.raises(ConfigError):
        destination(url)


def test_paho_is_imported_only_by_an_mqtt_destination_and_its_absence_is_one_clear_error(tmp_path):
    import subprocess
    import sys
    fake = tmp_path / "paho"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no paho here')\n")
    code = ("import sys, streamtag, streamtag.outputs\n"
            "from streamtag.outputs import AlertHub, WebhookAlerts\n"
            "assert not any(m.startswith('paho') for m in sys.modules), 'paho imported'\n"
            "from streamtag.errors import DependencyError\n"
            "from streamtag.outputs import MqttAlerts\n"
            "try:\n    MqttAlerts('mqtt://127.0.0.1:1/x')\nexcept DependencyError as e:\n    print(e)\n")
    from tests.helpers import ROOT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert out.returncode == 0, out.stderr
    assert "pip install 'streamtag[alerts]'" in out.stdout


def test_hub_pairs_each_end_with_its_start_when_a_label_reopens_before_its_end():
    """A label can reopen before its previous event's end is decided (start B, then end A): both ends are sent;
    within the cooldown neither the start nor the end is."""
    from streamtag.outputs.alerts import Destination
    from streamtag.outputs.detection import Detection, EventStart

    class Recording(Destination):
        name = "recording"

        def __init__(self):
            super().__init__()
            self.got = []

        def deliver(self, kind, message):
            self.got.append((kind, message["onset_s"]))
            return True

    dest = Recording()
    hub = AlertHub([dest], cooldown_s=5.0)
    hub.start(EventStart("Dog", "/m/x", 1.0, 0.5))
    hub.start(EventStart("Dog", "/m/x", 8.0, 0.5))
    hub.end(Detection("Dog", "/m/x", 1.0, 7.0, 0.5, 0.4))
    hub.start(EventStart("Dog", "/m/x", 10.0, 0.5))  # within 5 s of the last announced start: suppressed
    hub.end(Detection("Dog", "/m/x", 8.0, 9.0, 0.5, 0.4))
    hub.end(Detection("Dog", "/m/x", 10.0, 11.0, 0.5, 0.4))
    hub.close()
    assert dest.got == [("start", 1.0), ("start", 8.0), ("end", 1.0), ("end", 8.0)]
    assert hub.suppressed == 1
