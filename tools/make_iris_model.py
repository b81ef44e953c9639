#!/usr/bin/python3
"""make_iris_model.py - fit and write smserve's bundled default model.

Fits a StandardScaler + multinomial LogisticRegression on the iris data that
ships with scikit-learn (no download), then writes

  models/iris/linear-model.txt        the model, via tools/export_linear.py
  tests/vectors/iris_expected.csv     the 150 iris rows with scikit-learn's
                                      predict and predict_proba for each

Run from the repository root:  /usr/bin/python3 tools/make_iris_model.py
The test vectors are committed so that the tests need no scikit-learn: they
compare the server's answers with these (labels exactly, scores within 1e-9).
"""

import os
import sys

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_linear  # noqa: E402


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    iris = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(iris.data, iris.target)

    path = export_linear.export(model, os.path.join(root, "models", "iris"))

    vectors = os.path.join(root, "tests", "vectors", "iris_expected.csv")
    os.makedirs(os.path.dirname(vectors), exist_ok=True)
    labels = model.predict(iris.data)
    proba = model.predict_proba(iris.data)
    with open(vectors, "w", encoding="ascii", newline="\n") as f:
        # features as sent to the server, then scikit-learn's answers
        f.write("sepal_length,sepal_width,petal_length,petal_width,"
                "predict,proba_0,proba_1,proba_2\n")
        for x, y, p in zip(iris.data, labels, proba):
            f.write(",".join([repr(float(v)) for v in x] + [str(int(y))] +
                             [repr(float(v)) for v in p]) + "\n")
    print(path)
    print(vectors)
    print("training accuracy %.4f" % model.score(iris.data, iris.target))


if __name__ == "__main__":
    main()
