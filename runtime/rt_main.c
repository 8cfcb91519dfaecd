/* rt_main.c - main() of every generated executable: the model is the constant the
 * generated object defines. */
#include "nnc_rt.h"

extern const NncModelDesc nnc_model;

int main(int argc, char **argv)
{
    return nnc_main(argc, argv, &nnc_model);
}
