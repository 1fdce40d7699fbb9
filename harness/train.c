/* train.c - see train.h. */
#include "train.h"

#include <math.h>

#include "optim.h"

lra_step_hparams lra_step_hparams_at(const lra_config *c, long s) {
    lra_step_hparams hp = {lra_lr_at(c->schedule, c->lr, s, c->warmup, c->steps),
                           lra_beta1_at(c->schedule, c->adam_b1, s, c->warmup, c->steps),
                           c->adam_b2, c->adam_eps, c->wd, c->clip, s + 1};
    return hp;
}

float lra_train_step(lra_model *m, const int32_t *tokens, const uint8_t *mask, const int32_t *labels, int B, int L,
                     uint64_t stream, const lra_step_hparams *hp, double *norm) {
    const float loss = lra_model_forward(m, tokens, mask, labels, B, L, 1, stream);
    lra_model_zero_grad(m);
    lra_model_backward(m);
    *norm = lra_model_grad_norm(m);
    if (!isfinite(loss) || !isfinite(*norm)) return loss;
    const float scale = (hp->clip > 0 && *norm > hp->clip) ? (float)(hp->clip / *norm) : 1.0f;
    lra_adam_step(m->params, m->grads, m->adam_m, m->adam_v, m->nparams, hp->lr, hp->beta1, hp->beta2, hp->eps, hp->wd,
                  hp->t, scale);
    return loss;
}
