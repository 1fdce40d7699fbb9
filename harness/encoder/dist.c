/* dist.c - see dist.h. */
#define _POSIX_C_SOURCE 200809L
#include "dist.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

static int active; /* MPI initialised by lra_dist_init */
static int rank, size = 1, local_size = 1;
enum { HOST_LEN = MPI_MAX_PROCESSOR_NAME + 1 };
static char *hosts; /* (size, HOST_LEN): every process's host, gathered once at the start */
static int *counts; /* (4, size): the shard sum's counts and displacements, allocated once */

/* The launchers' own variables: OpenMPI's mpirun, PMIx (OpenMPI 4, Slurm's srun --mpi=pmix), PMI
 * (MPICH's hydra, srun --mpi=pmi2). A plain start has none of them. */
static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

int lra_dist_init(int *argc, char ***argv) {
    if (!launched_by_mpi()) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "lra-bench: MPI_Init_thread failed (started by an MPI launcher, which set OMPI_COMM_WORLD_SIZE, "
                        "PMIX_RANK or PMI_RANK)\n");
        return 1;
    }
    active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
    hosts = calloc((size_t)size, HOST_LEN);
    counts = malloc(4 * sizeof(int) * (size_t)size);
    if (!hosts || !counts) {
        fprintf(stderr, "lra-bench: out of memory starting MPI with %d processes\n", size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char name[HOST_LEN] = "";
    int len = 0;
    MPI_Get_processor_name(name, &len);
    MPI_Allgather(name, HOST_LEN, MPI_CHAR, hosts, HOST_LEN, MPI_CHAR, MPI_COMM_WORLD);
    /* an error in a collective (a peer gone) ends the job with MPI's message, never a hang */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    return 0;
}

void lra_dist_finalize(void) {
    if (active) MPI_Finalize();
    active = 0;
    free(hosts);
    free(counts);
    hosts = NULL;
    counts = NULL;
}

int lra_dist_rank(void) { return rank; }
int lra_dist_size(void) { return size; }
int lra_dist_default_threads(void) {
    const int t = (int)sysconf(_SC_NPROCESSORS_ONLN) / local_size;
    return t > 1 ? t : 1;
}

void lra_dist_shards_of(int r, int S, int *lo, int *hi) {
    *lo = r < size ? (int)((long)S * r / size) : S;
    *hi = r < size ? (int)((long)S * (r + 1) / size) : S;
}

void lra_dist_shard_examples(int s, int S, int B, int *lo, int *hi) {
    *lo = (int)((long)B * s / S);
    *hi = (int)((long)B * (s + 1) / S);
}

void lra_dist_merge_f32(float *x, int n) {
    if (active && size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void lra_dist_merge_i32(int32_t *x, int n) {
    if (active && size > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT32_T, MPI_SUM, MPI_COMM_WORLD);
}

int lra_dist_max_int(int v) {
    if (active && size > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v;
}

lra_status lra_dist_agree(lra_status st, char *err) {
    if (!active || size == 1) return st;
    int first = st != LRA_OK ? rank : size;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == size) return LRA_OK;
    int code = (int)st;
    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
    MPI_Bcast(err, LRA_ERR_LEN, MPI_CHAR, first, MPI_COMM_WORLD);
    if (first != 0 && rank != first) { /* say whose message it is */
        char mine[LRA_ERR_LEN];
        snprintf(mine, sizeof mine, "process %d of %d: %s", first, size, err);
        memcpy(err, mine, LRA_ERR_LEN);
    }
    return (lra_status)code;
}

/* the parameters [chunk(j), chunk(j+1)) that rank j sums */
static size_t chunk(int j, size_t n) { return n * (size_t)j / (size_t)size; }

void lra_dist_pack_shard(float *send, const float *grad, int k, int own, size_t n) {
    for (int j = 0; j < size; j++) {
        const size_t lo = chunk(j, n), len = chunk(j + 1, n) - lo;
        memcpy(send + (size_t)own * lo + (size_t)k * len, grad + lo, len * sizeof(float));
    }
}

/* An all-to-all of slices (rank j receives every shard's slice j, in shard order: the ranks' shards
 * ascend with the rank), a left-to-right sum of each slice, an all-gather of the sums. */
void lra_dist_sum_shards(float *sum, const float *send, float *recv, int S, size_t n, double *bytes) {
    int *scount = counts, *sdispl = scount + size, *rcount = sdispl + size, *rdispl = rcount + size;
    int lo, hi;
    lra_dist_shards_of(rank, S, &lo, &hi);
    const int own = hi - lo;
    const size_t mylo = chunk(rank, n), mylen = chunk(rank + 1, n) - mylo;
    int at = 0;
    for (int j = 0; j < size; j++) {
        int jlo, jhi;
        lra_dist_shards_of(j, S, &jlo, &jhi);
        scount[j] = own * (int)(chunk(j + 1, n) - chunk(j, n));
        sdispl[j] = own * (int)chunk(j, n);
        rcount[j] = (jhi - jlo) * (int)mylen;
        rdispl[j] = at;
        at += rcount[j];
    }
    MPI_Alltoallv(send, scount, sdispl, MPI_FLOAT, recv, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD);
    float *out = sum + mylo;
    if (S > 0) memcpy(out, recv, mylen * sizeof(float));
    for (int s = 1; s < S; s++) {
        const float *g = recv + (size_t)s * mylen;
        for (size_t x = 0; x < mylen; x++) out[x] += g[x];
    }
    for (int j = 0; j < size; j++) {
        rcount[j] = (int)(chunk(j + 1, n) - chunk(j, n));
        rdispl[j] = (int)chunk(j, n);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, sum, rcount, rdispl, MPI_FLOAT, MPI_COMM_WORLD);
    if (bytes) *bytes += (double)sizeof(float) * ((double)own * (double)(n - mylen) + (double)mylen * (size - 1));
}

cJSON *lra_dist_json(void) {
    cJSON *j = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddNumberToObject(j, "processes", size);
    cJSON_AddBoolToObject(j, "mpi", active);
    if (hosts) {
        for (int r = 0; r < size; r++) cJSON_AddItemToArray(list, cJSON_CreateString(hosts + (size_t)r * HOST_LEN));
    } else {
        char name[256] = "";
        gethostname(name, sizeof name - 1);
        cJSON_AddItemToArray(list, cJSON_CreateString(name));
    }
    cJSON_AddItemToObject(j, "hosts", list);
    return j;
}
