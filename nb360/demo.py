"""`nb360 demo`: the whole pipeline in a minute or two on a laptop CPU.

Generates a small Darcy Flow data set with the package's own solver, trains a handful of
well-known NB201 cells on it with the standard loop, prints a table and draws a figure.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nb360.figures import figure

# Cells with a story: NB201's best CIFAR cell, its ResNet cell, a cheap 1x1 cell, a cell with no
# convolution at all, and the empty cell (only the residual blocks between stages learn).
DEMO_ARCHS = {
    "nb201-best": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "conv1x1": "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "pool+skip": "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "empty": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
}
# Small enough for two CPU cores: 29x29 grid from a 113x113 solve, C=8, one cell per stage.
SAMPLES, RESOLUTION, SOLVER_RESOLUTION, C, N, BATCH, LR = 200, 29, 113, 8, 1, 10, 0.05


def run_demo(out: Path, epochs: int = 8, seed: int = 0) -> list[dict]:
    from nb360.data import darcy, load_task
    from nb360.spaces.costs import count_flops, count_params
    from nb360.spaces.nb201 import Arch
    from nb360.spaces.network import build
    from nb360.train import fit, seed_everything

    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    print(f"1/3 generating Darcy Flow: {SAMPLES} + {SAMPLES} samples, {SOLVER_RESOLUTION}^2 solve -> {RESOLUTION}^2, in {data_dir}")
    darcy.generate(data_dir, n=SAMPLES, resolution=RESOLUTION, solver_resolution=SOLVER_RESOLUTION, seed=seed)
    task = load_task("darcyflow", data_root=data_dir, resolution=RESOLUTION)
    print(f"2/3 training {len(DEMO_ARCHS)} cells for {epochs} epochs (C={C}, N={N}, "
          f"{len(task.train)}/{len(task.val)}/{len(task.test)} train/val/test)")
    rows, curves, models = [], {}, {}
    for name, arch_str in DEMO_ARCHS.items():
        arch = Arch.from_str(arch_str)
        seed_everything(seed)
        model = build(arch, task.spec, C=C, N=N)
        records = fit(model, task.splits, task.loss, task.metric, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed)
        final = records[-1]
        rows.append({
            "name": name, "index": arch.index, "arch": arch_str,
            "params": count_params(model), "mflops": count_flops(model, task.spec.input_shape) / 1e6,
            "val_rel_l2": final["val_metric"], "test_rel_l2": final["test_metric"],
            "seconds": final["train_seconds"],
        })
        curves[name] = [r["val_metric"] for r in records]
        models[name] = model
        print(f"    {name:<10} val {final['val_metric']:.4f}  test {final['test_metric']:.4f}  ({final['train_seconds']:.1f} s)")

    print("3/3 results (relative L2 error, lower is better)")
    print(f"{'cell':<10} {'index':>6} {'params':>8} {'MFLOPs':>8} {'val':>8} {'test':>8} {'seconds':>8}")
    for r in rows:
        print(f"{r['name']:<10} {r['index']:>6} {r['params']:>8,} {r['mflops']:>8.2f} "
              f"{r['val_rel_l2']:>8.4f} {r['test_rel_l2']:>8.4f} {r['seconds']:>8.1f}")
    with (out / "demo.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = min(rows, key=lambda r: r["val_rel_l2"])["name"]
    _plot(out / "demo.png", curves, task, models[best], best)
    print(f"table: {out / 'demo.csv'}\nfigure: {out / 'demo.png'}")
    return rows


def _plot(path: Path, curves: dict[str, list[float]], task, model, name: str) -> None:
    """Validation curves of every cell, and one test sample solved by the best cell."""
    import torch

    normalizer = task.loss.normalizer
    x, y = task.test[0]
    device = next(model.parameters()).device  # fit moved the model and the loss's normaliser there
    model.eval()
    with torch.no_grad():
        pred = normalizer.decode(model(x[None].to(device)))[0, 0].cpu()
        truth = normalizer.decode(y[None].to(device))[0, 0].cpu()
    coeff = x[0]  # the input's coefficient channel, normalised pixel by pixel as the network sees it

    err = (pred - truth).abs()
    panels = [("coefficient a (normalised)", coeff, "viridis"), ("solution u (solver)", truth, "magma"),
              (f"prediction ({name})", pred, "magma"), ("|error|", err, "Greys")]
    with figure(path, ncols=5, size=(2.6, 3.8), width_ratios=[1.6, 1, 1, 1, 1]) as (fig, axes):
        ax = axes[0, 0]
        for label, values in curves.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
        ax.set(xlabel="epoch", ylabel="validation relative L2", yscale="log", title="Darcy Flow, NB201 cells")
        ax.legend(fontsize=8)
        for a, (title, image, cmap) in zip(axes[0, 1:], panels):
            im = a.imshow(image.numpy(), cmap=cmap, origin="lower")
            a.set_title(title, fontsize=9)
            a.axis("off")
            fig.colorbar(im, ax=a, fraction=0.046, pad=0.04)
