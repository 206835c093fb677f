/* The library itself: tsenor.h's implementation, compiled once for the extension (with
   TSENOR_CUDA when setup.py links the CUDA backend). */
#define TSENOR_IMPLEMENTATION
#include "tsenor.h"
