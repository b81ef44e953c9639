#!/usr/bin/python3
"""make_xgboost_mme_golden.py - golden answers of AWS's XGBoost container in
multi-model mode, for tests/xgboost_mme.sh.

    /usr/bin/python3 tools/make_xgboost_mme_golden.py LAYOUT [OUT]

  LAYOUT  AWS's serving code laid out by ../shared/oracles/xgboost-container/
          prepare.sh (src/, scsrc/, stubs/), plus sagemaker-inference 1.5.5
          (the version the container's requirements.txt pins) under sisrc/:
            git -C path/to/sagemaker-inference-toolkit archive v1.5.5 \\
                src/sagemaker_inference | tar -x -C LAYOUT --transform 's,^src,sisrc,'
  OUT     where to write (default tests/xgboost/golden_mme in this repository)

In multi-model mode the container runs Multi Model Server (MMS 1.1.2) with
algorithm_mode/handler_service.py. This runs that handler's own transform
(XGBMMSTransformer.transform with the real sagemaker_inference) on each
request, with a stand-in for the MMS context (request headers in, response
Content-Type out). MMS itself is Java and Python not run here; what it does
with the handler's result is written from reading its v1.1.2 source:
  - mms/service.py predict: an exception out of the handler is answered
    503 "Prediction failed" (the handler raises on every failure: its
    transformer calls handle_error with an older toolkit's arguments);
  - frontend Job.sendError / NettyUtils.sendError: that error as Gson's
    pretty-printed {"code", "type", "message"} and a newline,
    Content-Type application/json;
  - a success: status 200, the Content-Type the handler set, its bytes.
The models are the committed ones of tests/xgboost/golden/models. Writes
requests/<name>, answers/<id> and manifest.tsv, one line per case:
  id  model-dir  environment  content-type  accept  request  status
  answer-content-type  answer
(model-dir relative to the repository, request and answer to OUT; "-" for no
header, no environment or no answer file). Deterministic.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = "tests/xgboost/golden/models"

REQUESTS = {
    "csv3": b"0.5,1.5,-0.25,2,0.125\n-1,0,0.75,-0.5,3\n2.5,-2,1,0,-1.5\n",
    "csv1": b"0.5,1.5,-0.25,2,0.125",
    "libsvm3": b"1:0.5 2:1.5 3:-0.25 4:2 5:0.125\n1:-1 3:0.75 4:-0.5 5:3\n0 1:2.5 2:-2 3:1 5:-1.5\n",
    "bad_csv": b"a,b,c\n",
    "empty": b"",
}

# (model, environment, content-type, accept, request); "-": none.
CASES = []
for model in ("binary_logistic", "multi_softprob"):
    for env in ("-", "SAGEMAKER_BATCH=true"):
        for accept in ("text/csv", "csv", "TEXT/CSV", "application/json", "json", "-", "*/*",
                       "application/jsonlines", "text/csv; charset=utf-8"):
            CASES.append((model, env, "text/csv", accept, "csv3"))
        CASES.append((model, env, "text/libsvm", "application/json", "libsvm3"))
    CASES += [(model, "-", "text/csv", "text/csv", "csv1"),
              (model, "-", "-", "text/csv", "libsvm3"),
              (model, "-", "libsvm", "csv", "libsvm3"),
              (model, "-", "text/csv", "text/csv", "empty"),
              (model, "-", "text/csv", "text/csv", "bad_csv"),
              (model, "-", "application/json", "text/csv", "csv3"),
              (model, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv", "text/csv", "-", "csv3"),
              (model, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=csv", "text/csv", "*/*", "csv3")]

MMS_ERROR = (b'{\n  "code": 503,\n  "type": "InternalServerException",\n'
             b'  "message": "Prediction failed"\n}\n')


class RequestProcessor:
    def __init__(self, props):
        self.props = props

    def get_request_properties(self):
        return self.props


class Context:
    """What mms.context.Context offers the handler."""

    def __init__(self, model_dir, props):
        self._system_properties = {"model_dir": model_dir}
        self.system_properties = self._system_properties
        self.request_processor = [RequestProcessor(props)]
        self.content_type = None

    def set_response_content_type(self, idx, value):
        self.content_type = value

    def set_response_status(self, code=200, phrase=""):
        self.status = code


def answer(hs, model, env, ct, accept, body):
    """(status, content-type, bytes) as MMS would send them."""
    for name in ("SAGEMAKER_BATCH", "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"):
        os.environ.pop(name, None)
    if env != "-":
        name, value = env.split("=", 1)
        os.environ[name] = value
    hs.SAGEMAKER_BATCH = os.getenv("SAGEMAKER_BATCH")  # read at import by the module
    props = {}
    if ct != "-":
        props["Content-Type"] = ct
    if accept != "-":
        props["Accept"] = accept
    ctx = Context(os.path.join(REPO, MODELS, model), props)
    try:
        result = hs.HandlerService().handle([{"body": body}], ctx)
    except Exception:  # mms/service.py: "Prediction failed", 503
        return 503, "application/json", MMS_ERROR
    out = result[0]
    return 200, ctx.content_type, out.encode("utf-8") if isinstance(out, str) else out


def main():
    layout = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "tests/xgboost/golden_mme")
    sys.path[:0] = [os.path.join(layout, d) for d in ("src", "scsrc", "stubs", "sisrc")]
    os.environ["OMP_NUM_THREADS"] = "1"
    import logging
    import warnings
    warnings.simplefilter("ignore")
    from sagemaker_xgboost_container.algorithm_mode import handler_service as hs
    logging.disable(logging.CRITICAL)
    for d in ("requests", "answers"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for name, body in REQUESTS.items():
        with open(os.path.join(out, "requests", name), "wb") as f:
            f.write(body)
    lines = []
    for i, (model, env, ct, accept, req) in enumerate(CASES):
        status, rct, data = answer(hs, model, env, ct, accept, REQUESTS[req])
        case_id = "%02d_%s" % (i, model)
        with open(os.path.join(out, "answers", case_id), "wb") as f:
            f.write(data)
        lines.append("\t".join([case_id, os.path.join(MODELS, model), env, ct, accept,
                                "requests/" + req, str(status), rct or "-",
                                "answers/" + case_id]))
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
