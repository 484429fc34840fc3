"""Trivial ClientApp: `steps` Adam steps of the head on random clips per subject the node serves; the
reply is the mean state with weight = subjects (the same reply shape as a fedfer crowd node)."""

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from trivial_head import CLASSES, FEATURES, Head, state

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    subjects, steps = int(context.run_config["subjects-per-node"]), int(context.run_config["steps"])
    received = msg.content["arrays"].to_torch_state_dict()
    total: dict[str, torch.Tensor] = {}
    for _ in range(subjects):
        head = Head()
        head.load_state_dict(received, strict=False)
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(
                head(torch.rand(16, 20, FEATURES)), torch.randint(0, CLASSES, (16,))
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for k, v in state(head).items():
            total[k] = total.get(k, 0) + v.detach() / subjects
    metrics = MetricRecord({"num-examples": subjects, "subjects": subjects})
    return Message(RecordDict({"arrays": ArrayRecord(total), "metrics": metrics}), reply_to=msg)
