/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bffio's job parser on many job files: fio's own example files, inheritance, units, lists,
 * substitutions, includes, the command line, and every kind of error (exit-2 material: it must
 * name the file, the line and the option).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef JOBS_DIR
#error "JOBS_DIR must name the directory of the sample job files"
#endif

static struct bffio_jobset *parse_ok(const char *text)
{
    struct bffio_jobset *set = malloc(sizeof(*set));
    assert_non_null(set);
    bffio_jobset_init(set);
    struct bffio_error err;
    memset(&err, 0, sizeof(err));
    int rc = bffio_parse_text(set, text, strlen(text), "t.fio", 0, &err);
    if (rc != 0)
        fail_msg("unexpected error: %s:%u: %s: %s", err.file, err.line, err.option, err.msg);
    return set;
}

static void done(struct bffio_jobset *set)
{
    bffio_jobset_free(set);
    free(set);
}

static void test_units(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(bffio_parse_size("4k", 1024, &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(bffio_parse_size("4KiB", 1000, &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(bffio_parse_size("4kb", 1000, &v), 0);
    assert_int_equal(v, 4000);
    assert_int_equal(bffio_parse_size("4K", 1000, &v), 0);
    assert_int_equal(v, 4000);
    assert_int_equal(bffio_parse_size("1.5g", 1024, &v), 0);
    assert_int_equal(v, 1610612736ull);
    assert_int_equal(bffio_parse_size("0x10", 1024, &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(bffio_parse_size("2M", 1024, &v), 0);
    assert_int_equal(v, 2u << 20);
    assert_int_equal(bffio_parse_size("512", 1024, &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(bffio_parse_size("4q", 1024, &v), -1);
    assert_int_equal(bffio_parse_size("-4k", 1024, &v), -1);
    assert_int_equal(bffio_parse_size("", 1024, &v), -1);
    assert_int_equal(bffio_parse_size("k", 1024, &v), -1);
    assert_int_equal(bffio_parse_time_us("10", 1000000, &v), 0);
    assert_int_equal(v, 10000000);
    assert_int_equal(bffio_parse_time_us("500ms", 1000000, &v), 0);
    assert_int_equal(v, 500000);
    assert_int_equal(bffio_parse_time_us("2m", 1000000, &v), 0);
    assert_int_equal(v, 120000000);
    assert_int_equal(bffio_parse_time_us("1h", 1000000, &v), 0);
    assert_int_equal(v, 3600000000ull);
    assert_int_equal(bffio_parse_time_us("250", 1, &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(bffio_parse_time_us("10x", 1, &v), -1);
}

static void test_defaults(void **state)
{
    (void)state;
    struct bffio_jobset *set = parse_ok("[only]\n");
    assert_int_equal(set->nr, 1);
    const struct bffio_job *j = &set->jobs[0];
    assert_string_equal(j->name, "only");
    assert_true(j->rw_read);
    assert_false(j->rw_write);
    assert_int_equal(j->bs[0], 4096);
    assert_int_equal(j->iodepth, 0); /* not given: the controller's */
    assert_int_equal(j->numjobs, 1);
    assert_int_equal(j->loops, 1);
    assert_int_equal(j->rwmixread, 50);
    assert_int_equal(j->percentile_nr, 17);
    assert_true(j->randrepeat);
    assert_false(j->direct);
    done(set);
}

static void test_inheritance_units_lists(void **state)
{
    (void)state;
    struct bffio_jobset set;
    bffio_jobset_init(&set);
    struct bffio_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(bffio_parse_file(&set, JOBS_DIR "/inherit.fio", 0, &err), 0);
    assert_int_equal(set.nr, 2);
    const struct bffio_job *a = &set.jobs[0], *b = &set.jobs[1];
    /* bs and size came before kb_base=1000 in [global]: parsed with 1024 */
    assert_int_equal(a->bs[0], 8192);
    assert_int_equal(a->bs[1], 16384);
    assert_int_equal(a->bs[2], 16384);
    assert_int_equal(a->size, 6u << 20);
    assert_int_equal(a->kb_base, 1000);
    assert_int_equal(a->runtime_us, 1500000);
    assert_true(a->rw_read && a->rw_write && a->rw_random);
    assert_int_equal(a->rw_nr, 4);
    assert_int_equal(a->rwmixread, 70);
    assert_int_equal(a->percentile_nr, 3);
    assert_true(a->percentile_list[2] > 99.89 && a->percentile_list[2] < 99.91);
    assert_int_equal(a->iodepth, 0); /* the second [global] comes after job a */
    assert_int_equal(b->iodepth, (int)sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(b->percentile_nr, 17); /* a's own option did not leak into b */
    assert_int_equal(b->bssplit_nr[0], 2);
    assert_int_equal(b->bssplit[0][0].bs, 4000); /* kb_base=1000 applies by now */
    assert_int_equal(b->bssplit[0][0].perc, 20);
    assert_int_equal(b->bssplit[0][1].bs, 64000);
    assert_int_equal(b->bssplit[0][1].perc, 80);
    assert_int_equal(b->bssplit_nr[1], 1);
    assert_int_equal(b->bssplit[1][0].bs, 8000);
    assert_int_equal(b->bssplit[1][0].perc, 100);
    assert_int_equal(b->nrfiles, 3);
    assert_int_equal(b->offset, 1024);
    /* JSON "job options" keep what each section said; "global options" the first [global] */
    assert_int_equal(a->opts_nr, 3);
    assert_string_equal(a->opts[0].key, "rw");
    assert_string_equal(set.global_opts[1].key, "size");
    assert_string_equal(set.global_opts[1].val, "6m");
    bffio_jobset_free(&set);
}

static void test_fio_examples(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        unsigned jobs;
        int iodepth;
        bool direct, time_based;
    } cases[] = {
        {"fio-rand-read.fio", 1, 16, false, true},
        {"fio-seq-write.fio", 1, 16, true, true},
        {"fio-rand-RW.fio", 1, 16, false, true},
        {"ssd-test.fio", 4, 4, true, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bffio_jobset set;
        bffio_jobset_init(&set);
        struct bffio_error err;
        memset(&err, 0, sizeof(err));
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", JOBS_DIR, cases[i].file);
        int rc = bffio_parse_file(&set, path, 0, &err);
        if (rc)
            fail_msg("%s: %s:%u %s %s", cases[i].file, err.file, err.line, err.option, err.msg);
        assert_int_equal(set.nr, cases[i].jobs);
        for (unsigned k = 0; k < set.nr; k++) {
            assert_int_equal(set.jobs[k].iodepth, cases[i].iodepth);
            assert_int_equal(set.jobs[k].direct, cases[i].direct);
            assert_int_equal(set.jobs[k].time_based, cases[i].time_based);
            assert_string_equal(set.jobs[k].ioengine, "libaio");
        }
        bffio_jobset_free(&set);
    }
    /* ssd-test: four groups, 10g each, a directory, and the rw of each section. */
    struct bffio_jobset set;
    bffio_jobset_init(&set);
    struct bffio_error err;
    assert_int_equal(bffio_parse_file(&set, JOBS_DIR "/ssd-test.fio", 0, &err), 0);
    assert_int_equal(set.jobs[0].size, 10ull << 30);
    assert_string_equal(set.jobs[0].directory, "/mount-point-of-ssd");
    assert_string_equal(bffio_rw_name(&set.jobs[1]), "randread");
    assert_string_equal(bffio_rw_name(&set.jobs[3]), "randwrite");
    for (unsigned k = 0; k < 4; k++)
        assert_true(set.jobs[k].stonewall);
    bffio_jobset_free(&set);
    /* fio-rand-RW: rwmixwrite=40 after rwmixread=60 agrees; numjobs=4 */
    bffio_jobset_init(&set);
    assert_int_equal(bffio_parse_file(&set, JOBS_DIR "/fio-rand-RW.fio", 0, &err), 0);
    assert_int_equal(set.jobs[0].rwmixread, 60);
    assert_int_equal(set.jobs[0].numjobs, 4);
    bffio_jobset_free(&set);
}

static void test_comments_blank_sections_env(void **state)
{
    (void)state;
    setenv("BFFIO_TEST_SIZE", "64k", 1);
    struct bffio_jobset *set = parse_ok("; a comment\n"
                                        "# another\n"
                                        "\n"
                                        "[global]\n"
                                        "\n"
                                        "[empty]\n"
                                        "\n"
                                        "[x]\n"
                                        "   size = ${BFFIO_TEST_SIZE}   # trailing comment\n"
                                        "\trw=write ; and this\n"
                                        "time_based\n"
                                        "runtime=2\n"
                                        "direct=1\n"
                                        "iodepth=(4+4)*2\n");
    assert_int_equal(set->nr, 2);
    assert_string_equal(set->jobs[0].name, "empty");
    assert_int_equal(set->jobs[1].size, 65536);
    assert_true(set->jobs[1].rw_write);
    assert_true(set->jobs[1].time_based);
    assert_int_equal(set->jobs[1].iodepth, 16);
    assert_string_equal(set->jobs[1].opts[0].val, "64k"); /* recorded after substitution */
    done(set);
}

static void test_include(void **state)
{
    (void)state;
    char dir[] = "/tmp/bffio-inc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char inc[600], top[600];
    snprintf(inc, sizeof(inc), "%s/common.fio", dir);
    snprintf(top, sizeof(top), "%s/top.fio", dir);
    FILE *f = fopen(inc, "w");
    assert_non_null(f);
    fputs("[global]\nbs=64k\nrw=randwrite\n", f);
    fclose(f);
    f = fopen(top, "w");
    assert_non_null(f);
    fputs("include common.fio\n[job]\nsize=1m\n", f);
    fclose(f);
    struct bffio_jobset set;
    bffio_jobset_init(&set);
    struct bffio_error err;
    assert_int_equal(bffio_parse_file(&set, top, 0, &err), 0);
    assert_int_equal(set.nr, 1);
    assert_int_equal(set.jobs[0].bs[0], 65536);
    assert_true(set.jobs[0].rw_write);
    bffio_jobset_free(&set);
    /* The fuzzer's mode refuses includes, naming the line. */
    bffio_jobset_init(&set);
    assert_int_equal(bffio_parse_file(&set, top, BFFIO_PARSE_NO_INCLUDE, &err), -1);
    assert_int_equal(err.line, 1);
    assert_string_equal(err.option, "include");
    bffio_jobset_free(&set);
    /* An include of a missing file names it. */
    f = fopen(top, "w");
    fputs("[j]\ninclude nothere.fio\n", f);
    fclose(f);
    bffio_jobset_init(&set);
    assert_int_equal(bffio_parse_file(&set, top, 0, &err), -1);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "nothere.fio"));
    bffio_jobset_free(&set);
    unlink(inc);
    unlink(top);
    rmdir(dir);
}

struct err_case {
    const char *text;
    unsigned line;
    const char *option;
    const char *msg_part;
};

static void test_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"[a]\nbogus=1\n", 2, "bogus", "unknown option"},
        {"[a]\n\ngtod_reduce=1\n", 3, "gtod_reduce", "not supported"},
        {"[a]\nrefill_buffers\n", 2, "refill_buffers", "not supported"},
        {"[a]\niodepth=abc\n", 2, "iodepth", "not a number"},
        {"[a]\niodepth=0\n", 2, "iodepth", "out of range"},
        {"[a]\nnumjobs=100000\n", 2, "numjobs", "out of range"},
        {"[a]\nbs=4q\n", 2, "bs", "not a valid value"},
        {"[a]\nsize=12parsecs\n", 2, "size", "not a size"},
        {"[a]\nruntime=soon\n", 2, "runtime", "not a time"},
        {"[a]\nrw=sideways\n", 2, "rw", "not a valid mode"},
        {"[a]\nrw=trim\n", 2, "rw", "does not support"},
        {"[a]\nrwmixread=101\n", 2, "rwmixread", "out of range"},
        {"[a]\ndirect=maybe\n", 2, "direct", "not a boolean"},
        {"[a]\nioengine=mmap\n", 2, "ioengine", "mmap"},
        {"[a]\nbssplit=4k/50:8k/40\n", 2, "bssplit", "add up to 100"},
        {"[a]\nbsrange=8k-4k\n", 2, "bsrange", "range"},
        {"[a]\nrandom_distribution=zipf\n", 2, "random_distribution", "theta"},
        {"[a]\nrandom_distribution=lognormal:1\n", 2, "random_distribution", "not a distribution"},
        {"[a]\npercentile_list=50:101\n", 2, "percentile_list", "percentile"},
        {"[a]\nsize=${BFFIO_SURELY_UNSET_VAR}\n", 2, "size", "BFFIO_SURELY_UNSET_VAR"},
        {"[a]\nsize=(4*)k\n", 2, "size", "expression"},
        {"[a]\nkb_base=512\n", 2, "kb_base", "1024 or 1000"},
        {"size=1m\n[a]\n", 1, "size", "outside of any section"},
        {"[a\nsize=1m\n", 1, "", "section header"},
        {"[a]\n=5\n", 2, "", "without an option name"},
        {"[]\n", 1, "name", "empty job name"},
        {"[a]\nsize=1m\n\n[b]\ntime_based\n", 4, "time_based", "needs a runtime"},
        {"[a]\nrw=randrw\nverify=crc32c\n", 1, "verify", "not mixed"},
        {"[a]\nverify=sha3\n", 2, "verify", "not supported"},
        {"[a]\nrw=write\nverify=pattern\n", 1, "verify_pattern", "needs verify_pattern"},
        {"[a]\nwait_for=nobody\n", 1, "wait_for", "not an earlier job"},
        {"[a]\n[a]\n[b]\nwait_for=a\n", 3, "wait_for", "a name 2 earlier jobs have"},
        {"[a]\ndirect=1\nbs=1000\n", 1, "bs", "multiples of 512"},
        {"[a]\nfile_service_type=random\n", 2, "file_service_type", "roundrobin"},
        {"[a]\nfilename=\n", 2, "filename", "needs a file name"},
        {"[a]\ntarget_p99=0\n", 2, "target_p99", "positive time"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bffio_jobset set;
        bffio_jobset_init(&set);
        struct bffio_error err;
        memset(&err, 0, sizeof(err));
        int rc = bffio_parse_text(&set, cases[i].text, strlen(cases[i].text), "bad.fio", 0, &err);
        if (rc != -1)
            fail_msg("case %zu (%s) parsed", i, cases[i].text);
        if (err.line != cases[i].line || strcmp(err.option, cases[i].option) || !strstr(err.msg, cases[i].msg_part) ||
            strcmp(err.file, "bad.fio"))
            fail_msg("case %zu (%s): got %s:%u option '%s': %s", i, cases[i].text, err.file, err.line, err.option,
                     err.msg);
        bffio_jobset_free(&set);
    }
}

static int parse_argv(struct bffio_jobset *set, struct bffio_error *err, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"bffio";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    bffio_jobset_init(set);
    memset(err, 0, sizeof(*err));
    return bffio_parse_args(set, argc, argv, err);
}

static void test_command_line(void **state)
{
    (void)state;
    struct bffio_jobset set;
    struct bffio_error err;
    static const char *const a1[] = {"--bs=8k", "--name=one", "--rw=randwrite", "--iodepth", "4", "--name=two",
                                     "--size=2m", "--output-format=json+", "--target-p99=2ms", "--eta=never", NULL};
    assert_int_equal(parse_argv(&set, &err, a1), 0);
    assert_int_equal(set.nr, 2);
    assert_int_equal(set.jobs[0].bs[0], 8192); /* before the first --name: global */
    assert_int_equal(set.jobs[1].bs[0], 8192);
    assert_int_equal(set.jobs[0].iodepth, 4);
    assert_int_equal(set.jobs[1].iodepth, 0);
    assert_true(set.jobs[0].rw_write);
    assert_false(set.jobs[1].rw_write);
    assert_int_equal(set.output_format, BFFIO_FMT_JSON | BFFIO_FMT_JSON_PLUS);
    assert_true(set.target_p99_ms > 1.999 && set.target_p99_ms < 2.001);
    assert_int_equal(set.eta, BFFIO_ETA_NEVER);
    bffio_jobset_free(&set);

    /* No job at all: the default one, with the command line's options on top. */
    static const char *const a2[] = {"--runtime=2", "--iodepth=8", NULL};
    assert_int_equal(parse_argv(&set, &err, a2), 0);
    assert_int_equal(set.nr, 1);
    assert_string_equal(set.jobs[0].name, "bffio-default");
    assert_int_equal(set.jobs[0].runtime_us, 2000000);
    assert_int_equal(set.jobs[0].iodepth, 8);
    assert_true(set.jobs[0].unlink);
    assert_true(set.jobs[0].rw_random && set.jobs[0].direct);
    bffio_jobset_free(&set);

    static const char *const a3[] = {"--name=x", "--bogus=1", NULL};
    assert_int_equal(parse_argv(&set, &err, a3), -1);
    assert_string_equal(err.option, "bogus");
    assert_int_equal(err.line, 0);
    bffio_jobset_free(&set);

    static const char *const a4[] = {"--output-format=xml", NULL};
    assert_int_equal(parse_argv(&set, &err, a4), -1);
    assert_string_equal(err.option, "output-format");
    bffio_jobset_free(&set);

    static const char *const a5[] = {"--name=x", JOBS_DIR "/does-not-exist.fio", NULL};
    assert_int_equal(parse_argv(&set, &err, a5), -1);
    assert_non_null(strstr(err.file, "does-not-exist.fio"));
    bffio_jobset_free(&set);

    static const char *const a6[] = {"--minimal", NULL};
    assert_int_equal(parse_argv(&set, &err, a6), -1);
    assert_string_equal(err.option, "minimal");
    bffio_jobset_free(&set);

    /* A job file after command-line globals: they are its defaults. */
    static const char *const a7[] = {"--runtime=3", JOBS_DIR "/ssd-test.fio", NULL};
    assert_int_equal(parse_argv(&set, &err, a7), 0);
    assert_int_equal(set.nr, 4);
    assert_int_equal(set.jobs[3].runtime_us, 60000000); /* the file's [global] wins */
    bffio_jobset_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_inheritance_units_lists),
        cmocka_unit_test(test_fio_examples),
        cmocka_unit_test(test_comments_blank_sections_env),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
