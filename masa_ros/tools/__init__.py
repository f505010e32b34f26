"""Offline and demo tools around the tracker node: the demo, replay, record, bags and evaluation."""
