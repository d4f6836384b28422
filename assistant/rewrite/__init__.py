"""Rewrite serving: replace an utterance known to fail by one known to work (the pipeline's stage 3).

    rules.py   precomputed rules (mined, taught or written by staff), personal before global

The learners that write rules are in learning/.
"""
