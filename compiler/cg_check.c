/* cg_check.c - the finiteness checks of gradients, in one small function the checks call:
 *
 *   double nnc_scan(real *p, i64 size, real *chk)
 *
 * adds x - x over p[0..size) into the vector at chk (x - x is 0 for a finite x and NaN
 * for NaN and the infinities, and a NaN stays in a sum) and returns the largest |x| (as a
 * double). One function instead of a loop at every check keeps the module small. */
#include "cg.h"

static LLVMValueRef vec_slot(Cg *g, LLVMValueRef chk)
{
    return LLVMBuildBitCast(g->b, chk, LLVMPointerType(cg_vec_type(g, g->lanes), 0), "");
}

/* The largest lane of v, halving in a fixed order. */
static LLVMValueRef max_lane(Cg *g, LLVMValueRef m)
{
    for (int width = g->lanes; width > 1; width /= 2) {
        LLVMValueRef lo[64], hi[64];
        for (int i = 0; i < width / 2; i++) {
            lo[i] = cg_i32(g, i);
            hi[i] = cg_i32(g, i + width / 2);
        }
        LLVMValueRef a = LLVMBuildShuffleVector(g->b, m, m, LLVMConstVector(lo, (unsigned)width / 2), "");
        LLVMValueRef b = LLVMBuildShuffleVector(g->b, m, m, LLVMConstVector(hi, (unsigned)width / 2), "");
        m = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOGT, a, b, ""), a, b, "");
    }
    return LLVMBuildExtractElement(g->b, m, cg_i32(g, 0), "");
}

/* One vector of the scan: the first `on` lanes of p[at..]. */
static void scan_step(Cg *g, LLVMValueRef p, LLVMValueRef at, int on, LLVMValueRef chk, LLVMValueRef mx)
{
    LLVMTypeRef vt = cg_vec_type(g, g->lanes);
    LLVMValueRef x = cg_vload(g, cg_gep(g, p, at), g->lanes, on);
    LLVMValueRef old = LLVMBuildLoad2(g->b, vt, chk, "");
    LLVMBuildStore(g->b, LLVMBuildFAdd(g->b, old, LLVMBuildFSub(g->b, x, x, ""), ""), chk);
    LLVMValueRef a = cg_intrinsic(g, "llvm.fabs", vt, &x, 1), m = LLVMBuildLoad2(g->b, vt, mx, "");
    LLVMBuildStore(g->b, LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOGT, a, m, ""), a, m, ""), mx);
}

void cg_check_helpers(Cg *g)
{
    LLVMTypeRef params[] = {g->realp, g->i64, g->realp};
    g->scan_type = LLVMFunctionType(g->f64, params, 3, 0);
    g->scan_fn = cg_add_function(g, "nnc_scan", g->scan_type);
    cg_fn_attr(g, g->scan_fn, "noinline");
    CgFrame frame;
    cg_frame_open(g, &frame, g->scan_fn, false);
    int w = g->lanes;
    LLVMValueRef p = LLVMGetParam(g->scan_fn, 0), size = LLVMGetParam(g->scan_fn, 1);
    LLVMValueRef chk = vec_slot(g, LLVMGetParam(g->scan_fn, 2));
    LLVMValueRef mx = cg_slot(g, cg_vec_type(g, w), "maxabs");
    LLVMBuildStore(g->b, cg_vzero(g, w), mx);
    LLVMValueRef full = LLVMBuildSDiv(g->b, size, cg_i64(g, w), "");
    CgLoop l = cg_loop_begin(g, cg_i64(g, 0), full, "v");
    scan_step(g, p, LLVMBuildNSWMul(g->b, l.i, cg_i64(g, w), ""), w, chk, mx);
    cg_loop_end(g, &l);
    /* the rest one element at a time, as one-lane vectors of the same slots */
    LLVMValueRef from = LLVMBuildNSWMul(g->b, full, cg_i64(g, w), "");
    CgLoop lt = cg_loop_begin(g, from, size, "t");
    scan_step(g, p, lt.i, 1, chk, mx);
    cg_loop_end(g, &lt);
    LLVMValueRef m = max_lane(g, LLVMBuildLoad2(g->b, cg_vec_type(g, w), mx, ""));
    LLVMBuildRet(g->b, g->real_size == 4 ? LLVMBuildFPExt(g->b, m, g->f64, "") : m);
    cg_frame_close(g);
}

LLVMValueRef cg_check_slot(Cg *g)
{
    LLVMValueRef chk = cg_slot(g, cg_vec_type(g, g->lanes), "chk");
    LLVMBuildStore(g->b, cg_vzero(g, g->lanes), chk);
    return LLVMBuildBitCast(g->b, chk, g->realp, "");
}

LLVMValueRef cg_scan(Cg *g, LLVMValueRef p, LLVMValueRef size, LLVMValueRef chk)
{
    LLVMValueRef args[] = {p, size, chk};
    return LLVMBuildCall2(g->b, g->scan_type, g->scan_fn, args, 3, "");
}

LLVMValueRef cg_check_sum(Cg *g, LLVMValueRef chk)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, cg_vec_type(g, g->lanes), vec_slot(g, chk), "");
    return LLVMBuildExtractElement(g->b, cg_vsums(g, &v, 1, g->lanes), cg_i32(g, 0), "");
}

LLVMValueRef cg_nonfinite(Cg *g, LLVMValueRef p, long long size, LLVMValueRef max)
{
    LLVMValueRef chk = cg_check_slot(g);
    LLVMValueRef m = cg_scan(g, p, cg_i64(g, size), chk);
    if (max)
        LLVMBuildStore(g->b, m, max);
    return cg_check_sum(g, chk);
}

LLVMValueRef cg_gmax(Cg *g, LLVMValueRef run)
{
    LLVMValueRef p = cg_call_rt(g, CG_RT_GMAX, &run, 1);
    return LLVMBuildBitCast(g->b, p, LLVMPointerType(g->f64, 0), "gmax");
}

LLVMValueRef cg_gmax_at(Cg *g, LLVMValueRef gmax, int i)
{
    LLVMValueRef at = cg_i64(g, i);
    return LLVMBuildInBoundsGEP2(g->b, g->f64, gmax, &at, 1, "");
}
