"""A stand-in for the scikit-learn image's framework glue, written for this test tier.

The real package (aws/sagemaker-scikit-learn-container, ``src/sagemaker_sklearn_container``) is not on PyPI; the
image installs it with ``--no-deps``. It is thin: ``training.main`` hands the job to sagemaker-training's entry-point
runner, and ``serving`` builds a sagemaker-containers transformer from the user module and starts gunicorn + nginx.
These modules do the same calls in the same order (read from that repository's source; not copied), so the
toolkits under test are the image's own, unpatched.
"""
