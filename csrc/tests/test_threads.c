/* Thread-count setting and status strings. */
#include "tasklle.h"
#include "tll_test.h"
#include <string.h>

int main(void)
{
    int def = tll_get_num_threads();
    CHECK(def >= 1);
    tll_set_num_threads(3);
    CHECK(tll_get_num_threads() == 3);
    tll_set_num_threads(0);
    CHECK(tll_get_num_threads() == def);
    tll_set_num_threads(-5);
    CHECK(tll_get_num_threads() == def);
    CHECK(strcmp(tll_status_string(TLL_OK), "ok") == 0);
    CHECK(strcmp(tll_status_string(TLL_ERR_NOMEM), "out of memory") == 0);
    TEST_MAIN_END();
}
