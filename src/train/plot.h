/*
 * plot.h - a loss curve as a PNG (libpng): training loss and validation loss
 * against the step, with labelled axes. Small and dependency-light on purpose:
 * people look at it after a run; tools read loss.csv instead.
 */
#ifndef AISTACK_TRAIN_PLOT_H
#define AISTACK_TRAIN_PLOT_H

#include <stddef.h>

/* curve: n rows of (step, train loss, val loss or NAN). 0, or AS_E* with a message in err. */
int plot_loss_png(const char *path, const float *curve, int n, char *err, size_t errlen);

#endif
