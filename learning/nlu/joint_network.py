"""The trainable joint network: a BERT whose parameter names are the encoder package's,
with an intent head and a BIO slot head after every layer.

Training builds this torch module; serving never does: assistant/nlu/joint.py runs
the saved weights with the encoder's inference layout.
"""

from __future__ import annotations


def build_net(config: dict, n_intents: int, n_labels: int, dropout: float):
    """A BERT whose parameter names are the package's, plus per-layer heads."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    dim = int(config["hidden_size"])
    n_layers = int(config["num_hidden_layers"])
    n_heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))

    def linear(i: int, o: int) -> nn.Linear:
        return nn.Linear(i, o)

    class JointNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleDict(
                {
                    "word_embeddings": nn.Embedding(int(config["vocab_size"]), dim),
                    "position_embeddings": nn.Embedding(int(config["max_position_embeddings"]), dim),
                    "token_type_embeddings": nn.Embedding(int(config.get("type_vocab_size", 2)), dim),
                    "LayerNorm": nn.LayerNorm(dim, eps=eps),
                }
            )
            inter = int(config["intermediate_size"])
            self.encoder = nn.ModuleDict(
                {
                    "layer": nn.ModuleList(
                        nn.ModuleDict(
                            {
                                "attention": nn.ModuleDict(
                                    {
                                        "self": nn.ModuleDict({n: linear(dim, dim) for n in ("query", "key", "value")}),
                                        "output": nn.ModuleDict(
                                            {"dense": linear(dim, dim), "LayerNorm": nn.LayerNorm(dim, eps=eps)}
                                        ),
                                    }
                                ),
                                "intermediate": nn.ModuleDict({"dense": linear(dim, inter)}),
                                "output": nn.ModuleDict(
                                    {"dense": linear(inter, dim), "LayerNorm": nn.LayerNorm(dim, eps=eps)}
                                ),
                            }
                        )
                        for _ in range(n_layers)
                    )
                }
            )
            self.intent_heads = nn.ModuleList(linear(dim, n_intents) for _ in range(n_layers))
            self.slot_heads = nn.ModuleList(linear(dim, n_labels) for _ in range(n_layers))
            self.drop = nn.Dropout(dropout)

        def forward(self, ids, mask):
            """ids, mask (b, n) -> per layer: intent logits (b, K), slot logits (b, n, S)."""
            e = self.embeddings
            b, n = ids.shape
            pos = torch.arange(n, device=ids.device)
            x = e["word_embeddings"](ids) + e["position_embeddings"](pos)[None] + e["token_type_embeddings"].weight[0]
            x = self.drop(e["LayerNorm"](x))
            m = mask.to(x.dtype)
            attn_mask = ((1.0 - m[:, None, None, :]) * torch.finfo(x.dtype).min).to(x.dtype)
            hd = dim // n_heads
            denom = m.sum(1, keepdim=True).clamp(min=1.0)
            intents, slots = [], []
            for i, layer in enumerate(self.encoder["layer"]):
                sa = layer["attention"]["self"]
                q, k, v = (sa[name](x).view(b, n, n_heads, hd).transpose(1, 2) for name in ("query", "key", "value"))
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
                a = a.transpose(1, 2).reshape(b, n, dim)
                ao = layer["attention"]["output"]
                x = ao["LayerNorm"](self.drop(ao["dense"](a)) + x)
                h = F.gelu(layer["intermediate"]["dense"](x))
                lo = layer["output"]
                x = lo["LayerNorm"](self.drop(lo["dense"](h)) + x)
                pooled = (x * m[:, :, None]).sum(1) / denom
                intents.append(self.intent_heads[i](self.drop(pooled)))
                slots.append(self.slot_heads[i](self.drop(x)))
            return intents, slots

    return JointNet()


def layer_weights(n_layers: int, scheme: str) -> list[float]:
    """Loss weight of each layer's heads, summing to 1.
    linear: proportional to depth. last_half: the last layer half, the others linear."""
    total = n_layers * (n_layers + 1) / 2
    linear = [(i + 1) / total for i in range(n_layers)]
    if scheme == "linear":
        return linear
    if scheme == "last_half":
        lower = sum(linear[:-1])
        return [0.5 * w / lower for w in linear[:-1]] + [0.5]
    raise ValueError(f"unknown layer_weights {scheme!r} (linear or last_half)")
