"""The user simulator and self-learning benchmark (`manage.py simulate`): a client of the
product, beside its apps. Nothing in the product imports it.

    data.py     goals and ASR pairs (SLURP format) and the SLURP -> our label mapping
    noise.py    the speech channel: real recognitions replayed, or a noise model learned from ASR pairs
    users.py    simulated users and their behaviour settings
    drivers.py  in-process (handle_turn) or the JSON API of a running server
    truth.py    ground truth per turn: goal met, true failure point, rewrite win/loss
    run.py      the loop over days and users, learning between days
    report.py   the JSON report;  plot.py  the defect-rate plot

Importing this package imports neither torch nor matplotlib.
"""
