/* mcuc.h: the whole mcuc int8 runtime API, one header per family of the op registry (mcuc/ops/);
 * generated code includes this. Conventions shared by every kernel are in mcuc_support.h. */
#ifndef MCUC_H
#define MCUC_H

#include "mcuc_support.h"

#include "mcuc_attention.h"
#include "mcuc_conv.h"
#include "mcuc_elementwise.h"
#include "mcuc_layout.h"
#include "mcuc_matmul.h"
#include "mcuc_norm.h"
#include "mcuc_pipeline.h"
#include "mcuc_pool.h"
#include "mcuc_softmax.h"

#endif /* MCUC_H */
