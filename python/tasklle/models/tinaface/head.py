"""IoU-aware RetinaNet head of TinaFace (vedadet ``IoUAwareRetinaHead``),
shared over all pyramid levels:

    cls branch: stacked 3x3 conv + GN + ReLU (``cls_convs``) -> ``retina_cls`` (A outputs)
    reg branch: stacked 3x3 conv + GN + ReLU (``reg_convs``) -> ``retina_reg`` (4A outputs)
                                                              -> ``retina_iou`` (A outputs)

A = anchors per position (3). Init: every conv N(0, 0.01), bias 0, except
``retina_cls`` bias = -log((1 - 0.01) / 0.01) (prior probability 0.01).
Channel layout: cls/iou channel a = anchor a; reg channel a*4 + j = delta j of anchor a.
"""
import math

import torch.nn as nn

from .layers import ConvGN


class IoUAwareHead(nn.Module):
    """forward(feats: tuple of (B, C, h, w)) -> (cls_scores, bbox_preds, iou_preds),
    three lists over levels of (B, A, h, w), (B, 4A, h, w), (B, A, h, w) logits/deltas."""

    def __init__(self, in_channels=256, feat_channels=256, stacked_convs=4, num_anchors=3, gn_groups=32,
                 prior_prob=0.01):
        super().__init__()
        self.num_anchors = num_anchors

        def branch():
            return nn.ModuleList(ConvGN(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1,
                                        gn_groups=gn_groups, relu=True) for i in range(stacked_convs))

        self.cls_convs = branch()
        self.reg_convs = branch()
        last = feat_channels if stacked_convs > 0 else in_channels
        self.retina_cls = nn.Conv2d(last, num_anchors, 3, padding=1)
        self.retina_reg = nn.Conv2d(last, num_anchors * 4, 3, padding=1)
        self.retina_iou = nn.Conv2d(last, num_anchors, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.retina_cls.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward_single(self, x):
        c = x
        for conv in self.cls_convs:
            c = conv(c)
        r = x
        for conv in self.reg_convs:
            r = conv(r)
        return self.retina_cls(c), self.retina_reg(r), self.retina_iou(r)

    def forward(self, feats):
        cls_scores, bbox_preds, iou_preds = [], [], []
        for x in feats:
            c, r, i = self.forward_single(x)
            cls_scores.append(c)
            bbox_preds.append(r)
            iou_preds.append(i)
        return cls_scores, bbox_preds, iou_preds
