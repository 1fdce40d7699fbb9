/* image.h - the Image task (grayscale CIFAR-10, or the Fashion-MNIST substitute): entry points
 * used by tests and tools. */
#ifndef LRA_IMAGE_H
#define LRA_IMAGE_H

#include "task.h"

/* The official grayscale of one pixel, as TensorFlow computes it in the official pipeline:
 * float32 channels scaled by 1/255, weighted 0.2989, 0.5870, 0.1140, times 255.5, truncated. */
uint8_t lra_gray(uint8_t r, uint8_t g, uint8_t b);

/* CIFAR-10 binary from cifar-10-binary.tar.gz or an extracted cifar-10-batches-bin/ (source):
 * split 0 = data_batch_1..5 records [0, 45000), 1 = [45000, 50000), 2 = test_batch. */
lra_status lra_cifar_load(lra_split *s, const char *source, int split, char *err);

/* Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...; gzipped or not) in dir, each 28x28
 * image centred on a black 32x32 canvas: split 0 = train [0, 54000), 1 = [54000, 60000),
 * 2 = t10k. The recorded sha256 is of the decompressed image and label bytes read. */
lra_status lra_fmnist_load(lra_split *s, const char *dir, int split, char *err);

#endif
