"""SAGEMAKER_SERVING_MODULE=sagemaker_xgboost_container.serving:main and the ``serve`` console script.

As in the image: ``serve`` defaults OMP_NUM_THREADS to 1 and starts sagemaker-containers' server (nginx in front of
gunicorn) with this module's ``main`` as the WSGI application; the first request in each worker imports the user
module (SAGEMAKER_PROGRAM) and builds a Transformer from its handlers.
"""

import importlib
import logging
import os

from sagemaker_containers.beta.framework import encoders, env, server, transformer, worker

logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
logger = logging.getLogger(__name__)


def default_model_fn(model_dir):
    return transformer.default_model_fn(model_dir)


def _not_reproduced(*_args):
    raise NotImplementedError("the XGBoost image's default input/predict handlers are not reproduced by this test tier; define input_fn and predict_fn")


def default_output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), mimetype=accept)


def _user_module_transformer(user_module):
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    handlers = {name: getattr(user_module, name, None) for name in ("input_fn", "predict_fn", "output_fn", "transform_fn")}
    if handlers["transform_fn"] and any(handlers[n] for n in ("input_fn", "predict_fn", "output_fn")):
        raise ValueError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if handlers["transform_fn"] is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=handlers["transform_fn"])
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=handlers["input_fn"] or _not_reproduced,
        predict_fn=handlers["predict_fn"] or _not_reproduced,
        output_fn=handlers["output_fn"] or default_output_fn,
    )


app = None


def main(environ, start_response):
    global app
    if app is None:
        serving_env = env.ServingEnv()
        if serving_env.module_name is None:
            raise RuntimeError("algorithm-mode serving (no SAGEMAKER_PROGRAM) is not reproduced by this test tier")
        user_module = importlib.import_module(serving_env.module_name)
        user_transformer = _user_module_transformer(user_module)
        user_transformer.initialize()
        app = worker.Worker(transform_fn=user_transformer.transform, module_name=serving_env.module_name)
    return app(environ, start_response)


def serving_entrypoint():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if os.environ.get("SAGEMAKER_MULTI_MODEL"):
        raise SystemExit("multi-model serving (multi-model-server, Java) is not reproduced by this test tier")
    server.start(env.ServingEnv().framework_module)
