"""eval names the predicted labels it leaves out (labels the reference never names) instead of hiding them."""
from __future__ import annotations

from streamtag.outputs.evaluation import Segment, event_scores, ignored_labels, ignored_notice, overall

REF = [Segment(0.0, 4.0, "Speech"), Segment(6.0, 9.0, "Dog")]
PRED = [Segment(0.1, 4.0, "Speech"), Segment(6.2, 9.1, "Dog"), Segment(6.2, 9.1, "Animal"),
        Segment(6.0, 8.0, "Bark"), Segment(7.0, 8.0, "Animal"), Segment(0.0, 3.0, "Speech")]


def test_the_ignored_labels_are_exactly_those_left_out_of_the_scores():
    scored = event_scores(REF, PRED)
    everything = event_scores(REF, PRED, only_reference_labels=False)
    assert ignored_labels(REF, PRED) == ["Animal", "Bark"] == sorted(set(everything) - set(scored))
    # what leaving them out changes: their events would be false positives
    assert overall(everything).fp - overall(scored).fp == 3


def test_the_notice_names_them_counts_their_events_and_says_how_to_count_them():
    line = ignored_notice(REF, PRED)
    assert line == ("ignored 2 predicted label(s) absent from the reference (3 events): Animal, Bark; "
                    "--all-labels counts them as false positives")
    assert "\n" not in line


def test_no_notice_when_every_predicted_label_is_in_the_reference():
    assert ignored_notice(REF, PRED[:2]) is None and ignored_labels(REF, []) == []
