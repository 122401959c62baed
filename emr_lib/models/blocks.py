"""Building blocks of EMR-HRNet and of the attention ablation (paper Table 5).

Every block is a plain ``nn.Module`` that can be used on its own. Shapes use
B = batch, C = channels, H x W = spatial size.

- :class:`EMA`: Efficient Multi-Scale Attention (Ouyang et al. 2023).
- :class:`MDTA`: Multi-Dconv Head Transposed Attention (Restormer, Zamir et al. 2022),
  pre-norm and residual as in the paper's equation 2.
- :class:`RefConv`: re-parameterised refocusing convolution (Cai et al. 2023).
- :class:`CBAM`, :class:`GAM`, :class:`ParNetAttention`: the comparison attention blocks.
- :class:`AttentionBasicBlock` and :class:`DEMA`: HRNet's residual basic block with an
  attention module before the residual sum; DEMA is the dilated + EMA variant.
- :class:`RAD`: RefConv Attention Downsampling block of the RMA pyramid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EMA",
    "MDTA",
    "RefConv",
    "CBAM",
    "GAM",
    "ParNetAttention",
    "AttentionBasicBlock",
    "DEMA",
    "RAD",
    "ema_groups",
    "mdta_heads",
]


def ema_groups(channels: int, max_groups: int = 32, min_group_channels: int = 4) -> int:
    """Group count for :class:`EMA` that works for every HRNet branch width.

    The rule: the largest divisor ``G`` of ``channels`` with ``G <= max_groups`` and
    ``channels / G >= min_group_channels``; 1 when no such divisor exists.

    EMA's author default is 32 groups, which fails for HRNet-W18's 18-channel branch
    (not divisible) and degenerates for 32 channels (one channel per group makes
    EMA's channel softmax a constant 1). Keeping at least 4 channels per group keeps
    the cross-spatial softmax meaningful. Examples: 16 -> 4, 18 -> 3, 32 -> 8,
    36 -> 9, 64 -> 16, 128 -> 32, 256 -> 32.
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    best = 1
    for g in range(1, min(max_groups, channels) + 1):
        if channels % g == 0 and channels // g >= min_group_channels:
            best = g
    return best


def mdta_heads(channels: int, channels_per_head: int = 32) -> int:
    """Head count for :class:`MDTA`: one head per 32 channels, at least one, dividing C."""
    heads = max(1, channels // channels_per_head)
    while channels % heads:
        heads -= 1
    return heads


class EMA(nn.Module):
    """Efficient Multi-Scale Attention: (B, C, H, W) -> (B, C, H, W).

    Channels are split into ``groups`` sub-features of C/G channels. Per group:
    a 1x1 branch (1-D average pools along H and W, a shared 1x1 conv, sigmoid gates,
    GroupNorm) and a 3x3 branch (one 3x3 conv); cross-spatial learning multiplies
    the softmax of each branch's global average pool with the other branch's
    flattened map; the summed maps, after a sigmoid, re-weight the input.
    There is no residual connection inside EMA (DEMA adds one).
    """

    def __init__(self, channels: int, groups: int | None = None):
        super().__init__()
        self.channels = channels
        self.groups = ema_groups(channels) if groups is None else groups
        if channels % self.groups:
            raise ValueError(f"EMA: {channels} channels are not divisible into {self.groups} groups")
        group_channels = channels // self.groups
        self.conv1x1 = nn.Conv2d(group_channels, group_channels, kernel_size=1)
        self.conv3x3 = nn.Conv2d(group_channels, group_channels, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(group_channels, group_channels)

    def _shared_conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        # One conv shared by all groups, run as a grouped conv on (B, C, ...): the same
        # maths as reshaping to (B*G, C/G, ...) but several times faster on CPU.
        g = self.groups
        return F.conv2d(x, conv.weight.repeat(g, 1, 1, 1), conv.bias.repeat(g), padding=conv.padding, groups=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return (x.reshape(b, self.groups, c // self.groups, h * w) * self.weights(x)).reshape(b, c, h, w)

    def weights(self, x: torch.Tensor, parts: dict | None = None) -> torch.Tensor:
        """The re-weighting map (B, G, 1, HW) that multiplies each group of ``x``.

        ``parts``, when given, receives the intermediate maps by name: ``gate_h`` (B, C, H, 1) and
        ``gate_w`` (B, C, 1, W), the 1x1 branch's sigmoid gates; ``branch_1x1`` and ``branch_3x3``
        (B, C, H, W), the two branches' outputs.
        """
        b, c, h, w = x.shape
        g, cg = self.groups, c // self.groups
        pooled_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        gates = self._shared_conv(self.conv1x1, torch.cat([pooled_h, pooled_w], dim=2))  # (B, C, H+W, 1)
        gate_h, gate_w = torch.split(gates, [h, w], dim=2)
        gated = x * gate_h.sigmoid() * gate_w.transpose(2, 3).sigmoid()
        # GroupNorm(C/G, C/G) per group == per-channel norm with the affine repeated G times
        # (self.channels, not c from the shape: ONNX export needs the group count as a constant)
        x1 = F.group_norm(gated, self.channels, self.norm.weight.repeat(g), self.norm.bias.repeat(g), self.norm.eps)
        x2 = self._shared_conv(self.conv3x3, x)  # 3x3 branch
        # cross-spatial learning per group: (B, G, 1, C/G) @ (B, G, C/G, HW) -> (B, G, 1, HW)
        a1 = x1.mean(dim=(2, 3)).reshape(b, g, 1, cg).softmax(dim=-1)
        a2 = x2.mean(dim=(2, 3)).reshape(b, g, 1, cg).softmax(dim=-1)
        weights = a1 @ x2.reshape(b, g, cg, h * w) + a2 @ x1.reshape(b, g, cg, h * w)
        if parts is not None:
            parts.update(gate_h=gate_h.sigmoid(), gate_w=gate_w.transpose(2, 3).sigmoid(), branch_1x1=x1, branch_3x3=x2)
        return weights.sigmoid()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels at every pixel: (B, C, H, W) -> (B, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MDTA(nn.Module):
    """Multi-Dconv Head Transposed Attention with pre-norm and residual: (B, C, H, W) -> same.

    ``out = x + proj(attention(norm(x)))`` where q, k, v come from a 1x1 conv to 3C and a
    3x3 depth-wise conv; q and k are L2-normalised along the pixels and the attention
    map is (C/heads x C/heads) per head, so the cost is linear in the number of pixels.
    About 4C^2 + 27C parameters.
    """

    def __init__(self, channels: int, heads: int | None = None, bias: bool = False):
        super().__init__()
        self.heads = mdta_heads(channels) if heads is None else heads
        if channels % self.heads:
            raise ValueError(f"MDTA: {channels} channels are not divisible into {self.heads} heads")
        self.norm = LayerNorm2d(channels)
        self.temperature = nn.Parameter(torch.ones(self.heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            channels * 3, channels * 3, kernel_size=3, padding=1, groups=channels * 3, bias=bias
        )
        self.proj = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The channel attention (B, heads, C/heads, C/heads) and the values (B, heads, C/heads, HW)."""
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(self.norm(x))).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        return (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn, v = self.attention(x)
        return x + self.proj((attn @ v).reshape(x.shape))


class RefConv(nn.Module):
    """Refocusing convolution: (B, C_in, H, W) -> (B, C_out, H', W').

    A frozen base kernel ``W_b`` (a buffer of shape C_out x C_in/groups x k x k) is
    refocused by a learnable convolution applied to the kernel itself,
    ``W_t = W_b + refocus(W_b)``, and the input is convolved with ``W_t``. The
    refocusing conv treats the C_out * C_in/groups 2-D kernels as channels, in
    C_in * C_out / groups^2 groups of ``groups`` channels each, so its parameter
    count equals a plain conv's.

    Why ``W_b`` is initialised here: the authors' code keeps ``W_b`` as zeros meant to
    be copied from a pretrained model. Trained from scratch, that gives ``W_t = 0``, a
    zero output and zero gradients. We initialise ``W_b`` with Kaiming-uniform, like
    ``nn.Conv2d``, unless a ``base_weight`` (e.g. from a pretrained conv) is given.

    :meth:`to_conv` returns the equivalent plain ``nn.Conv2d`` for inference.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        groups: int = 1,
        refocus_kernel_size: int = 3,
        base_weight: torch.Tensor | None = None,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"RefConv: channels {in_channels}->{out_channels} not divisible by groups={groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation, self.groups = kernel_size, stride, dilation, groups
        self.padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        if base_weight is None:
            base_weight = torch.empty(shape)
            nn.init.kaiming_uniform_(base_weight, a=math.sqrt(5))  # nn.Conv2d's default
        elif tuple(base_weight.shape) != shape:
            raise ValueError(f"RefConv: base_weight has shape {tuple(base_weight.shape)}, expected {shape}")
        self.register_buffer("base_weight", base_weight.detach().clone())
        kernels = out_channels * in_channels // groups
        self.refocus = nn.Conv2d(
            kernels,
            kernels,
            kernel_size=refocus_kernel_size,
            padding=refocus_kernel_size // 2,
            groups=in_channels * out_channels // groups**2,
            bias=False,
        )

    def transformed_weight(self) -> torch.Tensor:
        """``W_t = W_b + refocus(W_b)``, shape (C_out, C_in/groups, k, k)."""
        wb = self.base_weight
        kernels = wb.reshape(1, -1, self.kernel_size, self.kernel_size)
        return wb + self.refocus(kernels).reshape_as(wb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.transformed_weight(), None, self.stride, self.padding, self.dilation, self.groups)

    @torch.no_grad()
    def to_conv(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the transformed kernel: same output, no refocusing cost."""
        weight = self.transformed_weight()
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=False,
            device=weight.device,
            dtype=weight.dtype,
        )
        conv.weight.copy_(weight)
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}"
        )


class CBAM(nn.Module):
    """Convolutional Block Attention Module: (B, C, H, W) -> (B, C, H, W).

    Channel gate ``sigmoid(MLP(avgpool) + MLP(maxpool))`` then spatial gate
    ``sigmoid(conv7x7([max_c, mean_c]))``.
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_gate = self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(x.amax(dim=(2, 3), keepdim=True))
        x = x * channel_gate.sigmoid()
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * self.spatial(pooled).sigmoid()


class GAM(nn.Module):
    """Global Attention Mechanism: (B, C, H, W) -> (B, C, H, W).

    Channel attention: an MLP C -> C/rate -> C at each pixel; spatial attention:
    conv7x7 C -> C/rate -> C with BN and ReLU, then sigmoid. About 25 C^2 parameters
    at rate 4, so GAM is by far the heaviest block of Table 5.
    """

    def __init__(self, channels: int, rate: int = 4):
        super().__init__()
        hidden = max(1, channels // rate)
        self.channel_mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, 7, padding=3),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 7, padding=3),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_gate = self.channel_mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x * channel_gate.sigmoid()
        return x * self.spatial(x).sigmoid()


class ParNetAttention(nn.Module):
    """ParNet attention: (B, C, H, W) -> (B, C, H, W).

    ``SiLU(BN(conv1x1 x) + BN(conv3x3 x) + x * sigmoid(conv1x1(GAP x)))``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.branch1x1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.branch3x3 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.squeeze = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.squeeze(x.mean(dim=(2, 3), keepdim=True)).sigmoid()
        return F.silu(self.branch1x1(x) + self.branch3x3(x) + x * gate)


ATTENTION_BLOCKS: dict[str, type[nn.Module]] = {"dema": EMA, "gam": GAM, "parnet": ParNetAttention, "cbam": CBAM}


class AttentionBasicBlock(nn.Module):
    """HRNet basic block with attention: (B, C, H, W) -> (B, C, H, W).

    ``x -> conv3x3 -> BN -> ReLU -> conv3x3 (dilation d) -> BN -> attention -> + x -> ReLU``

    The conv/BN attribute names match timm's ``BasicBlock``, so a pretrained HRNet
    state dict loads into a backbone built from these blocks (the attention weights
    stay freshly initialised).
    """

    def __init__(self, channels: int, attention: nn.Module, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.attn = attention
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        return self.act(out + x)


class DEMA(AttentionBasicBlock):
    """Dilated Efficient Multi-scale Attention block: (B, C, H, W) -> (B, C, H, W).

    The basic block's second 3x3 conv is dilated (default 2: a 5x5 receptive field at
    the same cost) and followed by :class:`EMA`; the residual connection keeps the
    undilated signal, which counters the gridding effect of dilation.
    """

    def __init__(self, channels: int, dilation: int = 2, groups: int | None = None):
        super().__init__(channels, EMA(channels, groups), dilation=dilation)


class RAD(nn.Module):
    """RefConv Attention Downsampling block: (B, C_in, H, W) -> (B, C_out, H/s, W/s).

    ``RefConv3x3 (stride s) -> BN -> ReLU -> RefConv3x3 -> BN -> ReLU -> MDTA``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, heads: int | None = None):
        super().__init__()
        self.conv1 = RefConv(in_channels, out_channels, 3, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = RefConv(out_channels, out_channels, 3)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.attn = MDTA(out_channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.bn2(self.conv2(x)))
        return self.attn(x)
