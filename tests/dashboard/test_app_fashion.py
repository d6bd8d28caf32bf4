"""Models page on a Fashion-MNIST pair: it opens on clothes, with the pair's own numbers."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from compd_core.data import load_fashion_mnist
from compd_core.models.evaluate import evaluate_pair
from compd_core.zoo import load_pair
from dashboard_support import open_page

FASHION_PAIR = "resnet-fashion-int8-static"


def test_a_fashion_pair_is_listed_and_measured_on_fashion_mnist(app: AppTest) -> None:
    open_page(app, "models")
    assert any(o.startswith(f"{FASHION_PAIR}: ") for o in app.selectbox[0].options)
    app.selectbox[0].select(FASHION_PAIR).run()
    assert not app.exception and not app.error
    evaluation = evaluate_pair(load_pair(FASHION_PAIR), load_fashion_mnist("test"))
    metrics = [(m.label, m.value) for m in app.metric]
    assert [v for k, v in metrics if k == "Accuracy"] == [
        f"{evaluation.accuracy_original:.2%}", f"{evaluation.accuracy_compressed:.2%}"]
    assert ("Disagreements", f"{evaluation.disagreements:,}") in metrics
    assert app.session_state["dataset_choice"].spec == "fashion-mnist"
    assert any("fashion-mnist-test" in s.value for s in app.subheader)
