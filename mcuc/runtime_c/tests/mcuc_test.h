/* mcuc_test.h: minimal assertion helpers for the runtime's C unit tests (ctest). */
#ifndef MCUC_TEST_H
#define MCUC_TEST_H

#include <stdio.h>

static int mcuc_test_failures = 0;

#define MCUC_CHECK_EQ(got, want)                                                                      \
    do {                                                                                              \
        long mcuc_g_ = (long)(got), mcuc_w_ = (long)(want);                                            \
        if (mcuc_g_ != mcuc_w_) {                                                                     \
            printf("%s:%d: %s == %ld, want %ld\n", __FILE__, __LINE__, #got, mcuc_g_, mcuc_w_);        \
            ++mcuc_test_failures;                                                                     \
        }                                                                                             \
    } while (0)

#define MCUC_TEST_DONE(name)                                                                          \
    do {                                                                                              \
        printf("%s: %s\n", name, mcuc_test_failures ? "FAIL" : "ok");                                   \
        return mcuc_test_failures ? 1 : 0;                                                            \
    } while (0)

#endif /* MCUC_TEST_H */
