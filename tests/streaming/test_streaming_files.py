"""CSV / ARFF streams: types, categories, missing values and clear errors."""

import pytest

from moesuite.streaming import read_table
from moesuite.streaming.data.files import INFER_ROWS


def _csv(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_numeric_categorical_and_missing(tmp_path):
    p = _csv(tmp_path, "a,b,c,y\n1,red,3.5,yes\n2,blue,?,no\n,red,1e3,yes\n")
    rows = list(read_table(p, "y"))
    assert rows == [
        ({"a": 1.0, "b": "red", "c": 3.5}, "yes"),
        ({"a": 2.0, "b": "blue"}, "no"),
        ({"b": "red", "c": 1000.0}, "yes"),
    ]
    assert read_table(p, "y").n_samples == 3


def test_arff_declared_types(tmp_path):
    p = _csv(
        tmp_path,
        "% comment\n@relation toy\n@attribute a numeric\n@attribute 'my col' {x,y}\n"
        "@attribute class {0,1}\n@data\n1.5,x,0\n% skip\n2,'y',1\n",
        name="toy.arff",
    )
    assert list(read_table(p, "class")) == [
        ({"a": 1.5, "my col": "x"}, "0"),
        ({"a": 2.0, "my col": "y"}, "1"),
    ]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "nope.csv", "y")


def test_unknown_target_lists_columns(tmp_path):
    p = _csv(tmp_path, "a,y\n1,0\n")
    with pytest.raises(ValueError, match=r"--target 'label' is not a column .* \['a', 'y'\]"):
        read_table(p, "label")


@pytest.mark.parametrize("text", ["", "a,y\n", "a,y\n\n\n"])
def test_empty_stream(tmp_path, text):
    p = _csv(tmp_path, text)
    with pytest.raises(ValueError, match="empty"):
        read_table(p, "y")


def test_value_of_a_new_type_mid_stream(tmp_path):
    lines = ["a,y"] + [f"{i},{i % 2}" for i in range(INFER_ROWS + 50)] + ["oops,1"]
    p = _csv(tmp_path, "\n".join(lines) + "\n")
    stream = read_table(p, "y")  # the head is fine
    with pytest.raises(
        ValueError, match=rf"line {INFER_ROWS + 52}, column 'a': expected a number .* 'oops'"
    ):
        list(stream)


def test_ragged_row(tmp_path):
    p = _csv(tmp_path, "a,b,y\n1,2,0\n1,0\n")
    with pytest.raises(ValueError, match="line 3: 2 values but the header has 3 columns"):
        read_table(p, "y")
