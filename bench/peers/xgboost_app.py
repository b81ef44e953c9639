# A peer in the style of SageMaker's XGBoost container: Flask under gunicorn,
# the CSV body decoded with numpy into an XGBoost DMatrix, Booster.predict
# with the trees up to best_iteration (the container passes best_ntree_limit),
# one prediction per line. The model file is $XGB_MODEL. One thread per
# worker, as the container sets nthread=1; bench/xgboost.sh also sets
# OMP_NUM_THREADS=1, without which OpenMP threads of two workers spinning on
# two CPUs make single records 20x slower (the peer at its best is the fair
# comparison).
import os

import numpy as np
import xgboost as xgb
from flask import Flask, Response, request

booster = xgb.Booster(model_file=os.environ["XGB_MODEL"])
booster.set_param("nthread", 1)
best = booster.attr("best_iteration")
rounds = (0, int(best) + 1) if best is not None else (0, 0)
app = Flask(__name__)


@app.route("/ping")
def ping():
    return Response(status=200)


@app.route("/invocations", methods=["POST"])
def invocations():
    if request.content_type != "text/csv":
        return Response("unsupported content type\n", status=415)
    lines = request.get_data().decode("utf-8").strip().split("\n")
    rows = np.array([[float(v) if v else np.nan for v in line.split(",")] for line in lines])
    preds = booster.predict(xgb.DMatrix(rows, nthread=1), iteration_range=rounds)
    return Response("\n".join(map(str, preds.tolist())) + "\n", mimetype="text/csv")
