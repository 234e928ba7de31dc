/*
 * box_iou_tmpl.h -- private template of boxes_tmpl.h and assign_tmpl.h (so of
 * boxes.c and assign.c), included with T and S defined: the one IoU formula
 * of the box kernels. The operation order is that of tasklle.reference.boxes
 * (mmdet bbox_overlaps): overlap = clamp(min(x2) - max(x1), 0) *
 * clamp(min(y2) - max(y1), 0); union = (area_a + area_b) - overlap floored at
 * 1e-6. The core is compiled as ISO C (no FP contraction), so these give the
 * same bits as the PyTorch twin, and threshold ties (==, >=) agree with it
 * exactly. The pair loops that must vectorize (assign, NMS) repeat these
 * operations on scalars in the same order, so they give the same bits too.
 */
#ifndef TLL_BOX_IOU_EPS
#define TLL_BOX_IOU_EPS 1e-6
#endif

#ifndef TLL_IOU_INLINE
#if defined(__GNUC__)
/* forced, so that the pair loops calling it vectorize as if written out */
#define TLL_IOU_INLINE static inline __attribute__((always_inline))
#else
#define TLL_IOU_INLINE static inline
#endif
#endif

TLL_IOU_INLINE T FN(tll_box_area_)(const T *b)
{
    return (b[2] - b[0]) * (b[3] - b[1]);
}

/* IoU of box a = (ax1, ay1, ax2, ay2) of area aa with box b of area ab, from
   scalars (the structure-of-arrays loops of assign and NMS call it so). */
TLL_IOU_INLINE T FN(tll_box_iou_xy_)(T ax1, T ay1, T ax2, T ay2, T aa, T bx1, T by1, T bx2, T by2, T ab)
{
    T lx = ax1 > bx1 ? ax1 : bx1;
    T ly = ay1 > by1 ? ay1 : by1;
    T rx = ax2 < bx2 ? ax2 : bx2;
    T ry = ay2 < by2 ? ay2 : by2;
    T w = rx - lx, h = ry - ly;
    w = w < (T)0 ? (T)0 : w;
    h = h < (T)0 ? (T)0 : h;
    T overlap = w * h;
    T u = (aa + ab) - overlap;
    u = u < (T)TLL_BOX_IOU_EPS ? (T)TLL_BOX_IOU_EPS : u;
    return overlap / u;
}

/* IoU of box a (area aa) with box b (area ab). */
TLL_IOU_INLINE T FN(tll_box_iou_pair_)(const T *a, T aa, const T *b, T ab)
{
    return FN(tll_box_iou_xy_)(a[0], a[1], a[2], a[3], aa, b[0], b[1], b[2], b[3], ab);
}
