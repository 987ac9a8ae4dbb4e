"""SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main and the ``serve`` console script.

As in the image: ``serve`` starts sagemaker-containers' server (nginx in front of gunicorn) with this module's
``main`` as the WSGI application; the first request in each worker imports the user module (installing the code
directory with pip when it is not importable yet) and builds a Transformer from its handlers.
"""

import importlib
import logging
import os

import numpy as np
from sagemaker_containers.beta.framework import content_types, encoders, env, modules, server, transformer, worker

logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
logger = logging.getLogger(__name__)


def default_model_fn(model_dir):
    return transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type):
    array = encoders.decode(input_data, content_type)
    return array.astype(np.float32) if content_type in content_types.UTF8_TYPES else array


def default_predict_fn(input_data, model):
    return model.predict(input_data)


def default_output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), accept, mimetype=accept)


def _transformer(user_module):
    handlers = {name: getattr(user_module, name, None) for name in ("input_fn", "predict_fn", "output_fn", "transform_fn")}
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    if handlers["transform_fn"] and any(handlers[n] for n in ("input_fn", "predict_fn", "output_fn")):
        raise ValueError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if handlers["transform_fn"]:
        return transformer.Transformer(model_fn=model_fn, transform_fn=handlers["transform_fn"])
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=handlers["input_fn"] or default_input_fn,
        predict_fn=handlers["predict_fn"] or default_predict_fn,
        output_fn=handlers["output_fn"] or default_output_fn,
    )


def import_module(module_name, module_dir):
    try:  # importable already (e.g. installed by an earlier worker)
        user_module = importlib.import_module(module_name)
    except ImportError:  # sagemaker-containers installs the code directory with pip, then imports it
        user_module = modules.import_module(module_dir, module_name)
    user_transformer = _transformer(user_module)
    user_transformer.initialize()
    return user_transformer, getattr(user_module, "execution_parameters_fn", None)


app = None


def main(environ, start_response):
    global app
    if app is None:
        serving_env = env.ServingEnv()
        user_transformer, execution_parameters_fn = import_module(serving_env.module_name, serving_env.module_dir)
        app = worker.Worker(
            transform_fn=user_transformer.transform,
            module_name=serving_env.module_name,
            execution_parameters_fn=execution_parameters_fn,
        )
    return app(environ, start_response)


def serving_entrypoint():
    if os.environ.get("SAGEMAKER_MULTI_MODEL"):
        raise SystemExit("multi-model serving (multi-model-server, Java) is not reproduced by this test tier")
    server.start(env.ServingEnv().framework_module)
