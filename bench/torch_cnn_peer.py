#!/usr/bin/python3
"""The PyTorch peer of bench/run.py's workload (d): the CNN of bench/cnn_d.nn (conv 32 3x3
pad 1 relu, maxpool 2, conv 64 3x3 pad 1 relu, maxpool 2, flatten, dense 128 relu, dropout
0.25, dense 10, adam), written the way a PyTorch user would (F.conv2d, F.max_pool2d,
F.dropout, F.cross_entropy on logits, optim.Adam), with nnc's initialisation: he-normal
weights (std sqrt(2 / fan_in), fan_in = C*kh*kw for a conv) where relu follows,
xavier-uniform for the last layer, zero biases. Thread handling, output lines and timing
(the epoch's loop only) are torch_peer.py's.
"""
import argparse
import sys

import torch
import torch.nn.functional as F

from torch_peer import blas_thread_setter, evaluate, load_set, train_epoch


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.h = torch.nn.Linear(64 * 7 * 7, 128)
        self.z = torch.nn.Linear(128, 10)
        with torch.no_grad():
            for layer, fan_in in ((self.c1, 9), (self.c2, 32 * 9), (self.h, 64 * 49)):
                layer.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                layer.bias.zero_()
            torch.nn.init.xavier_uniform_(self.z.weight)
            self.z.bias.zero_()

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.c1.weight, self.c1.bias, padding=1)), 2)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.c2.weight, self.c2.bias, padding=1)), 2)
        x = F.relu(self.h(torch.flatten(x, 1)))
        x = F.dropout(x, 0.25, self.training)
        return self.z(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="IMAGES,LABELS")
    ap.add_argument("--test", help="IMAGES,LABELS")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training samples")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts to try")
    a = ap.parse_args()
    x, y = load_set(a.train, a.limit)
    test = load_set(a.test) if a.test else None
    torch.zeros(2, 2) @ torch.zeros(2, 2)  # loads the BLAS library
    set_blas_threads = blas_thread_setter()
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        if set_blas_threads is not None:
            set_blas_threads(threads)
        torch.manual_seed(a.seed)
        model = Cnn()
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        for e in range(a.epochs):
            model.train()
            seconds, loss, acc = train_epoch(model, opt, x, y, a.batch)
            print(f"threads {threads}  epoch {e + 1}  loss {loss:.6f}  acc {acc:.2f}%  "
                  f"seconds {seconds:.6f}", flush=True)
        if test is not None:
            model.eval()
            loss, acc = evaluate(model, *test)
            print(f"threads {threads}  test: loss {loss:.6f} acc {acc:.2f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
