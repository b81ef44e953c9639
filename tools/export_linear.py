#!/usr/bin/python3
"""export_linear.py - write a fitted scikit-learn linear model for smserve.

smserve's default model (model.c) reads one text file, linear-model.txt, in
the format described in docs/model-format.md ("smserve-linear-model 1"). This
tool writes that file from a fitted scikit-learn estimator and, optionally,
packs it into a model.tar.gz laid out as SageMaker expects (the file at the
root of the archive, so that SageMaker unpacks it to
/opt/ml/model/linear-model.txt).

Supported estimators (fitted):
  LinearRegression, Ridge, RidgeCV, Lasso, ElasticNet   -> kind regression
  LogisticRegression, LogisticRegressionCV              -> kind binary,
                                                            multinomial or ovr
  Pipeline(StandardScaler, one of the above)            -> plus mean/scale

Used from the command line, on an estimator saved with joblib or pickle:

  python3 tools/export_linear.py model.joblib -o outdir [--tar model.tar.gz]

or from Python:

  sys.path.insert(0, "tools"); import export_linear
  export_linear.export(estimator, "outdir", tar_path="model.tar.gz")

scikit-learn is needed only here, never by the server.
"""

import argparse
import io
import math
import os
import re
import sys
import tarfile

FORMAT_NAME = "smserve-linear-model"
FORMAT_VERSION = 1
MODEL_FILE = "linear-model.txt"

# Label tokens are written bare, so they must survive both a CSV line and a
# JSON string without escaping; see docs/model-format.md, "labels".
LABEL_RE = re.compile(r'^[\x21-\x7e]{1,64}$')
LABEL_FORBIDDEN = set('",\\')


class ExportError(Exception):
    """An estimator that the format cannot express."""


def _num(x):
    """A float as the shortest text that reads back to the same double."""
    x = float(x)
    if not math.isfinite(x):
        raise ExportError("the model holds a non-finite number (%r)" % x)
    return repr(x)


def _row(values):
    return " ".join(_num(v) for v in values)


def _label(c):
    """The text of one class label; numbers keep their Python spelling."""
    try:
        import numpy as np
        if isinstance(c, np.generic):
            c = c.item()
    except ImportError:  # numpy always comes with scikit-learn
        pass
    if isinstance(c, bool):
        text = str(c)
    elif isinstance(c, int):
        text = str(c)
    elif isinstance(c, float):
        if not math.isfinite(c):
            raise ExportError("class label %r is not finite" % c)
        text = repr(c)
    else:
        text = str(c)
    if not LABEL_RE.match(text) or LABEL_FORBIDDEN & set(text):
        raise ExportError(
            "class label %r cannot be written: a label is 1-64 visible ASCII "
            "characters without spaces, quotes, backslashes or commas" % text)
    return text


def _split_pipeline(est):
    """(scaler or None, final estimator) from an estimator or a Pipeline."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    if not isinstance(est, Pipeline):
        return None, est
    steps = [s for _, s in est.steps if s is not None and s != "passthrough"]
    if len(steps) == 1:
        return None, steps[0]
    if len(steps) == 2 and isinstance(steps[0], StandardScaler):
        return steps[0], steps[1]
    raise ExportError("a Pipeline must be StandardScaler followed by one "
                      "linear estimator, got %s" % [type(s).__name__ for s in steps])


def _scaler_rows(scaler, n):
    """mean and scale as StandardScaler.transform applies them."""
    import numpy as np
    if getattr(scaler, "n_features_in_", n) != n:
        raise ExportError("the StandardScaler has %d features, the estimator %d"
                          % (scaler.n_features_in_, n))
    mean = scaler.mean_ if scaler.with_mean and scaler.mean_ is not None else np.zeros(n)
    scale = scaler.scale_ if scaler.with_std and scaler.scale_ is not None else np.ones(n)
    return np.asarray(mean, dtype=float).ravel(), np.asarray(scale, dtype=float).ravel()


def _check_linear_and_fitted(final, supported):
    """Refuses, with the reason, an estimator that is fitted but not linear
    (no coefficients: a random forest, an RBF SVC), one of the supported
    kinds not yet fitted, and any other."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    name = type(final).__name__
    names = ", ".join(c.__name__ for c in supported)
    try:
        check_is_fitted(final)
        fitted = True
    except (NotFittedError, TypeError):  # TypeError: not an estimator at all
        fitted = False
    # coef_ raises AttributeError on an SVC with a non-linear kernel, so
    # hasattr tells a fitted linear estimator from a non-linear one.
    if fitted and not hasattr(final, "coef_"):
        raise ExportError("%s is not a linear model; smserve's default model serves "
                          "one of %s" % (name, names))
    if not isinstance(final, supported):
        raise ExportError("%s is not supported; use one of %s" % (name, names))
    if not fitted:
        raise ExportError("%s is not fitted; call fit before exporting it" % name)


def model_text(est):
    """The whole linear-model.txt for a fitted estimator, as a string."""
    import numpy as np
    import sklearn
    from sklearn import linear_model as lm

    scaler, final = _split_pipeline(est)
    regressors = (lm.LinearRegression, lm.Ridge, lm.RidgeCV, lm.Lasso, lm.ElasticNet)
    classifiers = (lm.LogisticRegression, lm.LogisticRegressionCV)
    _check_linear_and_fitted(final, regressors + classifiers)
    coef = np.asarray(final.coef_, dtype=float)
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=float)).ravel()

    if isinstance(final, regressors):
        if coef.ndim == 2 and coef.shape[0] != 1:
            raise ExportError("multi-output regression (%d targets) is not supported"
                              % coef.shape[0])
        coef = coef.reshape(1, -1)
        if intercept.size != 1:
            raise ExportError("expected one intercept, got %d" % intercept.size)
        kind, labels = "regression", None
    elif isinstance(final, classifiers):
        labels = [_label(c) for c in final.classes_]
        if len(set(labels)) != len(labels):
            raise ExportError("two class labels have the same text: %s" % labels)
        if len(labels) == 2:
            kind = "binary"
            if getattr(final, "multi_class", "auto") == "multinomial":
                # One row of weights, z, stands for the two classes' -z and z,
                # so predict_proba is softmax([-z, z]) = sigmoid(2z): doubling
                # the weights and intercept (exact in binary floating point)
                # lets the server's sigmoid give the same probability.
                coef, intercept = 2 * coef, 2 * intercept
        elif _is_ovr(final):
            kind = "ovr"
        else:
            kind = "multinomial"
        rows = 1 if kind == "binary" else len(labels)
        if coef.shape[0] != rows or intercept.size != rows:
            raise ExportError("expected %d weight rows, got %d" % (rows, coef.shape[0]))
    else:
        raise ExportError("%s is not supported; use one of %s" % (
            type(final).__name__,
            ", ".join(c.__name__ for c in regressors + classifiers)))

    n = coef.shape[1]
    out = io.StringIO()
    out.write("# %s: a linear model for smserve (docs/model-format.md)\n" % MODEL_FILE)
    out.write("# written by tools/export_linear.py from %s, scikit-learn %s\n"
              % (_describe(scaler, final), sklearn.__version__))
    out.write("%s %d\n" % (FORMAT_NAME, FORMAT_VERSION))
    out.write("kind %s\n" % kind)
    out.write("features %d\n" % n)
    if labels is not None:
        out.write("labels %s\n" % " ".join(labels))
    if scaler is not None:
        mean, scale = _scaler_rows(scaler, n)
        out.write("mean %s\n" % _row(mean))
        out.write("scale %s\n" % _row(scale))
    out.write("intercept %s\n" % _row(intercept))
    for r in coef:
        out.write("weights %s\n" % _row(r))
    out.write("end\n")
    return out.getvalue()


def _is_ovr(clf):
    """Whether predict_proba normalises one-vs-rest sigmoids (scikit-learn's rule)."""
    mc = getattr(clf, "multi_class", "auto")
    if mc in ("ovr", "warn"):
        return True
    if mc in ("auto", "deprecated"):  # "deprecated": scikit-learn >= 1.5
        return getattr(clf, "solver", "lbfgs") == "liblinear"
    return False


def _describe(scaler, final):
    name = type(final).__name__
    return "Pipeline(StandardScaler, %s)" % name if scaler is not None else name


def export(est, outdir, tar_path=None):
    """Writes outdir/linear-model.txt (and tar_path, if given); returns the file's path."""
    text = model_text(est)
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, MODEL_FILE)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    if tar_path:
        pack(outdir, tar_path)
    return path


def pack(outdir, tar_path):
    """model.tar.gz with linear-model.txt at its root, as SageMaker unpacks it."""
    with tarfile.open(tar_path, "w:gz") as tar:
        info = tar.gettarinfo(os.path.join(outdir, MODEL_FILE), arcname=MODEL_FILE)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o644
        with open(os.path.join(outdir, MODEL_FILE), "rb") as f:
            tar.addfile(info, f)


def _load(path):
    """An estimator saved with joblib.dump or pickle.dump."""
    try:
        import joblib
        return joblib.load(path)
    except ImportError:
        import pickle
        with open(path, "rb") as f:
            return pickle.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a fitted scikit-learn linear model as smserve's "
                    "linear-model.txt (and optionally a SageMaker model.tar.gz).")
    ap.add_argument("estimator", help="a fitted estimator saved with joblib or pickle")
    ap.add_argument("-o", "--outdir", required=True,
                    help="directory to write linear-model.txt into")
    ap.add_argument("--tar", metavar="PATH",
                    help="also pack PATH (model.tar.gz) for SageMaker's ModelDataUrl")
    args = ap.parse_args(argv)
    try:
        path = export(_load(args.estimator), args.outdir, args.tar)
    except ExportError as e:
        print("export_linear.py: %s" % e, file=sys.stderr)
        return 1
    print(path)
    if args.tar:
        print(args.tar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
