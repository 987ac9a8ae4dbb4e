"""The code that runs inside the SageMaker scikit-learn containers: validate, train, evaluate, serve.

Every step is a module that runs as ``python -m training.<step>`` and as ``python training/<step>.py``
(SageMaker script mode). ``training.contract`` imports only pydantic, so the stack configuration can
embed the data contract and evaluation rule without pulling in pandas or scikit-learn.
"""
