"""A stand-in for the XGBoost image's framework package, written for this test tier (script mode only).

The real package (aws/sagemaker-xgboost-container, ``src/sagemaker_xgboost_container``) is not on PyPI; the image
installs its wheel with ``--no-deps``. For a user entry point it is thin, and built on sagemaker-containers (the image
has no sagemaker-training): ``training.main`` runs the user's script through sagemaker-containers' module runner,
and ``serving`` imports the user module, builds a sagemaker-containers Transformer from its handlers and starts
gunicorn + nginx. These modules make the same calls in the same order (read from that repository's source; not
copied), so the toolkit under test is the image's own, unpatched. Not reproduced: algorithm mode (no user entry
point: the built-in XGBoost algorithm), the default handlers' XGBoost decoders, and multi-model serving (MMS, Java).
"""
