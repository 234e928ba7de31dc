/*
 * box_iou_inline.h -- private to boxes.c and assign.c: the one IoU formula of
 * the box kernels, for float and double. The operation order is that of
 * tasklle.reference.boxes (mmdet bbox_overlaps): overlap = clamp(min(x2) -
 * max(x1), 0) * clamp(min(y2) - max(y1), 0); union = (area_a + area_b) -
 * overlap floored at 1e-6. The core is compiled as ISO C (no FP contraction),
 * so these give the same bits as the PyTorch twin, and threshold ties (==, >=)
 * agree with it exactly.
 */
#ifndef TLL_BOX_IOU_INLINE_H
#define TLL_BOX_IOU_INLINE_H

#define TLL_BOX_IOU_EPS 1e-6

#define TLL_DEFINE_BOX_IOU(T, S)                                                                  \
    static inline T tll_box_area_##S(const T *b) { return (b[2] - b[0]) * (b[3] - b[1]); }        \
    /* IoU of box a (area aa) with box b (area ab). */                                           \
    static inline T tll_box_iou_pair_##S(const T *a, T aa, const T *b, T ab)                      \
    {                                                                                             \
        T lx = a[0] > b[0] ? a[0] : b[0];                                                         \
        T ly = a[1] > b[1] ? a[1] : b[1];                                                         \
        T rx = a[2] < b[2] ? a[2] : b[2];                                                         \
        T ry = a[3] < b[3] ? a[3] : b[3];                                                         \
        T w = rx - lx, h = ry - ly;                                                               \
        w = w < (T)0 ? (T)0 : w;                                                                  \
        h = h < (T)0 ? (T)0 : h;                                                                  \
        T overlap = w * h;                                                                        \
        T u = (aa + ab) - overlap;                                                                \
        u = u < (T)TLL_BOX_IOU_EPS ? (T)TLL_BOX_IOU_EPS : u;                                      \
        return overlap / u;                                                                       \
    }

TLL_DEFINE_BOX_IOU(float, f32)
TLL_DEFINE_BOX_IOU(double, f64)

#endif
