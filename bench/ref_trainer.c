/* ref_trainer.c - the hand-written C peer of nnc's benchmark (bench/run.py).
 *
 * Trains the benchmark's multilayer perceptrons on IDX data with exactly the maths of an
 * nnc model  h = dense(x, n, relu) ... z = dense(h, 10); loss = cross_entropy(softmax(z), t):
 *   init    hidden W ~ normal(0, sqrt(2/fan_in)) (he), last W ~ uniform(+-sqrt(6/(in+out)))
 *           (xavier), biases zero;
 *   epoch   shuffle, then minibatches of the shuffled order (the last, short one kept and
 *           averaged over its real size);
 *   step    forward, softmax cross-entropy (stable form), backward, w -= lr * mean gradient.
 * Two back ends do the three matrix products of a layer:
 *   blas    OpenBLAS cblas_sgemm, the update fused into the weight-gradient product
 *           (alpha = -lr, beta = 1); compiled in with -DREF_BLAS, link -lopenblas;
 *   loops   plain C loops in the vectorisable i-k-j order (the innermost loop runs along a
 *           contiguous row of the output), compiled with -O3 -march=native -fopenmp-simd.
 * Weights are kept input-major, Wt[in][out] (W's transpose), so that the forward product
 * and the weight update are i-k-j loops; the input gradient dX = dZ Wt^T is a dot product
 * over the (short) output dimension, vectorised with an omp simd reduction.
 *
 * Output (parsed by bench/run.py and tests/py/test_bench_smoke.py):
 *   epoch N  loss X  acc Y%  seconds S        (S: the epoch's shuffle and batches only)
 *   test: loss X acc Y%
 * Usage: ref_trainer --train IMAGES,LABELS [--test IMAGES,LABELS] [--limit N]
 *        [--layers 784,128,10] [--batch N] [--lr X] [--epochs N] [--seed N]
 *        [--backend loops|blas] [--threads N] */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <zlib.h>

#ifdef REF_BLAS
#include <cblas.h>
void openblas_set_num_threads(int n);
#endif

#define MAX_LAYERS 8

typedef struct {
    const char *train, *test, *backend;
    int sizes[MAX_LAYERS + 1], nlayers; /* nlayers weight layers: sizes[0..nlayers] */
    int batch, epochs, limit, threads;
    double lr;
    unsigned long long seed;
} Options;

typedef struct {
    int n, dim;     /* samples, values a sample */
    float *x;       /* n * dim, pixels in [0, 1] */
    unsigned char *y;
} Set;

typedef struct {
    int in, out;
    float *wt, *b;  /* wt: in * out (input-major), b: out */
    float *a;       /* this layer's output for a batch: rows * out (after relu if hidden) */
    float *d;       /* the loss gradient w.r.t. this layer's pre-activation: rows * out */
    float *g;       /* one row of the weight gradient (loops back end): out */
} Layer;

typedef struct {
    Layer layer[MAX_LAYERS];
    int nlayers, rows;  /* rows: the most samples a pass holds */
    float *xb;          /* the gathered batch: rows * sizes[0] */
    unsigned char *yb;
} Net;

/* The three products a layer needs; one implementation per back end. */
typedef struct {
    void (*forward)(const float *x, const Layer *l, int n);       /* a = x Wt + b */
    void (*input_grad)(const Layer *l, float *dx, int n);         /* dx = d Wt^T */
    void (*update)(const float *x, Layer *l, int n, float lr);    /* Wt -= lr x^T d */
} Backend;

static void die(const char *fmt, const char *what)
{
    fprintf(stderr, "ref_trainer: ");
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    exit(1);
}

/* As nnc's runtime (rt_alloc): 4 MB or more get 2 MB-aligned transparent huge pages, which
 * spares the first epoch the page-mapping cost this project's VMs charge for 4 KB pages. */
static void *xalloc(size_t bytes)
{
    size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    void *p = NULL;
    if (posix_memalign(&p, align, bytes ? bytes : 1) != 0)
        die("out of memory%s", "");
#ifdef MADV_HUGEPAGE
    if (align > 64)
        madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- random numbers: splitmix64, uniform in [0, 1), Box-Muller normals ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static double rng_normal(uint64_t *s)
{
    double u1 = 1.0 - rng_uniform(s), u2 = rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- IDX files, gzipped or not (zlib reads both) ---- */

static uint32_t read_u32(gzFile f, const char *path)
{
    unsigned char b[4];
    if (gzread(f, b, 4) != 4)
        die("%s: truncated IDX header", path);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads up to limit items (0: all) of an IDX file of unsigned bytes; returns the bytes. */
static unsigned char *read_idx(const char *path, int ndims, int limit, int *n, int *item)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        die("%s: cannot open", path);
    if (read_u32(f, path) != (uint32_t)(0x800 | ndims))
        die("%s: not an IDX file of unsigned bytes with the expected rank", path);
    uint32_t count = read_u32(f, path), size = 1;
    for (int i = 1; i < ndims; i++)
        size *= read_u32(f, path);
    if (limit > 0 && (uint32_t)limit < count)
        count = (uint32_t)limit;
    size_t bytes = (size_t)count * size;
    unsigned char *data = xalloc(bytes);
    if ((size_t)gzread(f, data, (unsigned)bytes) != bytes)
        die("%s: truncated data", path);
    gzclose(f);
    *n = (int)count;
    *item = (int)size;
    return data;
}

/* "IMAGES,LABELS" -> a set of at most limit samples. */
static Set load_set(const char *spec, int limit)
{
    char images[4096];
    const char *comma = strchr(spec, ',');
    if (!comma || (size_t)(comma - spec) >= sizeof images)
        die("data must be IMAGES,LABELS: %s", spec);
    memcpy(images, spec, (size_t)(comma - spec));
    images[comma - spec] = 0;
    Set s;
    int nl, one;
    unsigned char *pix = read_idx(images, 3, limit, &s.n, &s.dim);
    s.y = read_idx(comma + 1, 1, limit, &nl, &one);
    if (nl != s.n)
        die("%s: image and label counts differ", spec);
    s.x = xalloc(sizeof(float) * (size_t)s.n * (size_t)s.dim);
    for (size_t i = 0; i < (size_t)s.n * (size_t)s.dim; i++)
        s.x[i] = (float)pix[i] / 255.0f;
    free(pix);
    return s;
}

/* ---- back end 1: plain loops ---- */

static void loops_forward(const float *x, const Layer *l, int n)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * l->in;
        float *ai = l->a + (size_t)i * l->out;
        memcpy(ai, l->b, sizeof(float) * (size_t)l->out);
        for (int k = 0; k < l->in; k++) {
            const float xk = xi[k], *w = l->wt + (size_t)k * l->out;
            for (int j = 0; j < l->out; j++)
                ai[j] += xk * w[j];
        }
    }
}

static void loops_input_grad(const Layer *l, float *dx, int n)
{
    for (int i = 0; i < n; i++) {
        const float *di = l->d + (size_t)i * l->out;
        for (int k = 0; k < l->in; k++) {
            const float *w = l->wt + (size_t)k * l->out;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int j = 0; j < l->out; j++)
                s += di[j] * w[j];
            dx[(size_t)i * l->in + k] = s;
        }
    }
}

/* Row k of the gradient, sum_i x[i][k] d[i][:], then that row of the update. */
static void loops_update(const float *x, Layer *l, int n, float lr)
{
    float *g = l->g;
    for (int k = 0; k < l->in; k++) {
        memset(g, 0, sizeof(float) * (size_t)l->out);
        for (int i = 0; i < n; i++) {
            const float xik = x[(size_t)i * l->in + k], *di = l->d + (size_t)i * l->out;
            for (int j = 0; j < l->out; j++)
                g[j] += xik * di[j];
        }
        float *w = l->wt + (size_t)k * l->out;
        for (int j = 0; j < l->out; j++)
            w[j] -= lr * g[j];
    }
}

static const Backend loops_backend = {loops_forward, loops_input_grad, loops_update};

/* ---- back end 2: OpenBLAS ---- */

#ifdef REF_BLAS
static void blas_forward(const float *x, const Layer *l, int n)
{
    for (int i = 0; i < n; i++)
        memcpy(l->a + (size_t)i * l->out, l->b, sizeof(float) * (size_t)l->out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, l->out, l->in, 1.0f, x, l->in,
                l->wt, l->out, 1.0f, l->a, l->out);
}

static void blas_input_grad(const Layer *l, float *dx, int n)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->in, l->out, 1.0f, l->d, l->out,
                l->wt, l->out, 0.0f, dx, l->in);
}

static void blas_update(const float *x, Layer *l, int n, float lr)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->in, l->out, n, -lr, x, l->in,
                l->d, l->out, 1.0f, l->wt, l->out);
}

static const Backend blas_backend = {blas_forward, blas_input_grad, blas_update};
#endif

/* ---- the network ---- */

static void init_layer(Layer *l, int last, uint64_t *rng)
{
    double he = sqrt(2.0 / l->in), xavier = sqrt(6.0 / (l->in + l->out));
    /* Drawn in W[out][in] order, stored transposed. */
    for (int j = 0; j < l->out; j++)
        for (int k = 0; k < l->in; k++) {
            double v = last ? xavier * (2.0 * rng_uniform(rng) - 1.0) : he * rng_normal(rng);
            l->wt[(size_t)k * l->out + j] = (float)v;
        }
    memset(l->b, 0, sizeof(float) * (size_t)l->out);
}

static Net net_create(const Options *o, int rows)
{
    Net net;
    uint64_t rng = o->seed * 0x2545F4914F6CDD1DULL + 1;
    net.nlayers = o->nlayers;
    net.rows = rows;
    for (int i = 0; i < o->nlayers; i++) {
        Layer *l = &net.layer[i];
        l->in = o->sizes[i];
        l->out = o->sizes[i + 1];
        l->wt = xalloc(sizeof(float) * (size_t)l->in * (size_t)l->out);
        l->b = xalloc(sizeof(float) * (size_t)l->out);
        l->a = xalloc(sizeof(float) * (size_t)rows * (size_t)l->out);
        l->d = xalloc(sizeof(float) * (size_t)rows * (size_t)l->out);
        l->g = xalloc(sizeof(float) * (size_t)l->out);
        init_layer(l, i == o->nlayers - 1, &rng);
    }
    net.xb = xalloc(sizeof(float) * (size_t)rows * (size_t)o->sizes[0]);
    net.yb = xalloc((size_t)rows);
    return net;
}

static void net_free(Net *net)
{
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layer[i];
        free(l->wt);
        free(l->b);
        free(l->a);
        free(l->d);
        free(l->g);
    }
    free(net->xb);
    free(net->yb);
}

static void relu(float *a, size_t count)
{
    for (size_t i = 0; i < count; i++)
        a[i] = a[i] > 0 ? a[i] : 0;
}

static void forward(const Backend *be, Net *net, const float *x, int n)
{
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layer[i];
        be->forward(i ? net->layer[i - 1].a : x, l, n);
        if (i < net->nlayers - 1)
            relu(l->a, (size_t)n * (size_t)l->out);
    }
}

/* Softmax cross-entropy of the last layer's rows: adds the loss and the correct count;
 * with d set, writes d(mean loss)/dz = (softmax(z) - onehot(y)) / n into the layer. */
static void softmax_ce(Layer *l, const unsigned char *y, int n, int grad, double *loss,
                       long *correct)
{
    for (int i = 0; i < n; i++) {
        const float *z = l->a + (size_t)i * l->out;
        float *d = l->d + (size_t)i * l->out;
        int best = 0;
        for (int j = 1; j < l->out; j++)
            best = z[j] > z[best] ? j : best;
        float sum = 0;
        for (int j = 0; j < l->out; j++)
            sum += (d[j] = expf(z[j] - z[best]));
        *loss += logf(sum) - (z[y[i]] - z[best]);
        *correct += best == y[i];
        if (!grad)
            continue;
        for (int j = 0; j < l->out; j++)
            d[j] = (d[j] / sum - (j == y[i])) / (float)n;
    }
}

/* b -= lr * sum of the rows of d (d already holds the 1/n of the mean). */
static void bias_update(Layer *l, int n, float lr)
{
    for (int j = 0; j < l->out; j++) {
        float sum = 0;
        for (int r = 0; r < n; r++)
            sum += l->d[(size_t)r * l->out + j];
        l->b[j] -= lr * sum;
    }
}

static void backward(const Backend *be, Net *net, const float *x, int n, float lr)
{
    for (int i = net->nlayers - 1; i >= 0; i--) {
        Layer *l = &net->layer[i], *below = i ? &net->layer[i - 1] : NULL;
        if (below) {
            size_t count = (size_t)n * (size_t)below->out;
            be->input_grad(l, below->d, n);
            for (size_t e = 0; e < count; e++)
                below->d[e] = below->a[e] > 0 ? below->d[e] : 0;
        }
        bias_update(l, n, lr);
        be->update(below ? below->a : x, l, n, lr);
    }
}

static void gather(Net *net, const Set *s, const int *perm, int start, int n)
{
    for (int k = 0; k < n; k++) {
        int at = perm[start + k];
        memcpy(net->xb + (size_t)k * s->dim, s->x + (size_t)at * s->dim, sizeof(float) * s->dim);
        net->yb[k] = s->y[at];
    }
}

static void shuffle(int *perm, int n, uint64_t *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(rng) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void train_epoch(const Backend *be, Net *net, const Set *s, const Options *o, int *perm,
                        uint64_t *rng, int epoch)
{
    double loss = 0, t0 = now();
    long correct = 0;
    shuffle(perm, s->n, rng);
    for (int start = 0; start < s->n; start += o->batch) {
        int n = s->n - start < o->batch ? s->n - start : o->batch;
        gather(net, s, perm, start, n);
        forward(be, net, net->xb, n);
        softmax_ce(&net->layer[net->nlayers - 1], net->yb, n, 1, &loss, &correct);
        backward(be, net, net->xb, n, (float)o->lr);
    }
    double seconds = now() - t0;
    printf("epoch %d  loss %.6f  acc %.2f%%  seconds %.6f\n", epoch + 1, loss / s->n,
           100.0 * (double)correct / s->n, seconds);
    fflush(stdout);
}

static void evaluate(const Backend *be, Net *net, const Set *s, const char *what)
{
    double loss = 0;
    long correct = 0;
    for (int start = 0; start < s->n; start += net->rows) {
        int n = s->n - start < net->rows ? s->n - start : net->rows;
        forward(be, net, s->x + (size_t)start * s->dim, n);
        softmax_ce(&net->layer[net->nlayers - 1], s->y + start, n, 0, &loss, &correct);
    }
    printf("%s: loss %.6f acc %.2f%%\n", what, loss / s->n, 100.0 * (double)correct / s->n);
}

/* ---- command line ---- */

static void parse_layers(Options *o, const char *v)
{
    char *end;
    o->nlayers = -1;
    for (const char *p = v; *p; p = *end ? end + 1 : end) {
        long n = strtol(p, &end, 10);
        if (end == p || n < 1 || n > 1 << 20 || (*end && *end != ',') || o->nlayers >= MAX_LAYERS)
            die("--layers: bad list '%s'", v);
        o->sizes[++o->nlayers] = (int)n;
    }
    if (o->nlayers < 1)
        die("--layers: need at least two sizes: '%s'", v);
}

static long int_value(const char *flag, const char *v, long lo)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo)
        die("bad value for %s", flag);
    return n;
}

static Options parse(int argc, char **argv)
{
    Options o = {.train = NULL, .test = NULL, .backend = "loops", .batch = 64, .epochs = 1,
                 .limit = 0, .threads = 1, .lr = 0.1, .seed = 1};
    parse_layers(&o, "784,128,10");
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s needs a value", f);
        if (!strcmp(f, "--train")) o.train = v;
        else if (!strcmp(f, "--test")) o.test = v;
        else if (!strcmp(f, "--backend")) o.backend = v;
        else if (!strcmp(f, "--layers")) parse_layers(&o, v);
        else if (!strcmp(f, "--batch")) o.batch = (int)int_value(f, v, 1);
        else if (!strcmp(f, "--epochs")) o.epochs = (int)int_value(f, v, 0);
        else if (!strcmp(f, "--limit")) o.limit = (int)int_value(f, v, 0);
        else if (!strcmp(f, "--threads")) o.threads = (int)int_value(f, v, 1);
        else if (!strcmp(f, "--seed")) o.seed = (unsigned long long)int_value(f, v, 0);
        else if (!strcmp(f, "--lr")) o.lr = atof(v);
        else die("unknown option %s", f);
    }
    if (!o.train)
        die("--train IMAGES,LABELS is required%s", "");
    return o;
}

static const Backend *pick_backend(const Options *o)
{
    if (!strcmp(o->backend, "loops"))
        return &loops_backend;
#ifdef REF_BLAS
    if (!strcmp(o->backend, "blas")) {
        openblas_set_num_threads(o->threads);
        return &blas_backend;
    }
#endif
    die("back end '%s' is not built in (blas needs -DREF_BLAS -lopenblas)", o->backend);
    return NULL;
}

int main(int argc, char **argv)
{
    Options o = parse(argc, argv);
    const Backend *be = pick_backend(&o);
    Set train = load_set(o.train, o.limit), test = {0, 0, NULL, NULL};
    if (train.dim != o.sizes[0])
        die("the images do not match the first layer size (%s)", o.train);
    if (o.test)
        test = load_set(o.test, 0);
    Net net = net_create(&o, o.batch > 256 ? o.batch : 256);
    int *perm = xalloc(sizeof(int) * (size_t)(train.n ? train.n : 1));
    for (int i = 0; i < train.n; i++)
        perm[i] = i;
    uint64_t rng = o.seed ^ 0x5DEECE66DULL;
    for (int e = 0; e < o.epochs; e++)
        train_epoch(be, &net, &train, &o, perm, &rng, e);
    if (o.test)
        evaluate(be, &net, &test, "test");
    net_free(&net);
    free(perm);
    free(train.x);
    free(train.y);
    free(test.x);
    free(test.y);
    return 0;
}
