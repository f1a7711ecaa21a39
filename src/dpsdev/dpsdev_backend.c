/*
 * dpsdev: the backend over the dps layer. Chooses the attestation from what
 * the device presented (a TLS client certificate means X.509, as Azure: a
 * device that presents both is judged by its certificate), runs the match,
 * then the assignment, and turns the outcome into a dpsdev reason and the
 * registrationState JSON.
 */
#include <stdio.h>
#include <string.h>

#include "dps/dps.h"
#include "dpsdev/dpsdev.h"

static enum hub_dpsdev_reason reason_of(enum hub_dps_refusal r)
{
    switch (r) {
    case HUB_DPS_REFUSAL_NONE:
        return HUB_DPSDEV_R_OK;
    case HUB_DPS_REFUSAL_NO_ENROLLMENT:
        return HUB_DPSDEV_R_NO_ENROLLMENT;
    case HUB_DPS_REFUSAL_CHAIN_INVALID:
        return HUB_DPSDEV_R_CHAIN_INVALID;
    case HUB_DPS_REFUSAL_CN_MISMATCH:
        return HUB_DPSDEV_R_CN_MISMATCH;
    case HUB_DPS_REFUSAL_DISABLED:
        return HUB_DPSDEV_R_DISABLED;
    case HUB_DPS_REFUSAL_SIGNER_UNVERIFIED:
        return HUB_DPSDEV_R_SIGNER_UNVERIFIED;
    case HUB_DPS_REFUSAL_CA_REFERENCE_INVALID:
        return HUB_DPSDEV_R_CA_REFERENCE_INVALID;
    case HUB_DPS_REFUSAL_BAD_SIGNATURE:
        return HUB_DPSDEV_R_SAS_INVALID;
    case HUB_DPS_REFUSAL_INTERNAL:
        break;
    }
    return HUB_DPSDEV_R_SERVER_ERROR;
}

static void dps_register(void *arg, const struct hub_dpsdev_claim *claim,
                         struct hub_dpsdev_verdict *v)
{
    struct hub_dps *dps = arg;
    struct hub_dps_match m;
    memset(&m, 0, sizeof(m));
    struct hub_err err = {0};
    int rc;
    if (claim->leaf != NULL)
        rc = hub_dps_match_x509(dps, claim->registration_id, claim->leaf, claim->chain, &m, &err);
    else if (claim->sas_token != NULL)
        rc = hub_dps_match_symmetric(dps, claim->registration_id, claim->sas_token,
                                     claim->sas_token_len, &m, &err);
    else {
        v->reason = HUB_DPSDEV_R_NO_CREDENTIAL;
        return;
    }
    if (rc != 0 || m.refusal != HUB_DPS_REFUSAL_NONE) {
        v->reason = rc != 0 && m.refusal == HUB_DPS_REFUSAL_NONE ? HUB_DPSDEV_R_SERVER_ERROR
                                                                 : reason_of(m.refusal);
        snprintf(v->detail, sizeof(v->detail), "%s", err.msg);
        hub_dps_match_clear(&m);
        return;
    }
    struct hub_dps_registration reg;
    memset(&reg, 0, sizeof(reg));
    rc = hub_dps_assign(dps, claim->registration_id, &m, &reg, &err);
    if (rc != 0) {
        /* The device learns that its registration failed (Azure's "failed"
         * status with errorCode/errorMessage); the operator reads why in
         * the log. */
        v->reason = rc == HUB_E_EXISTS ? HUB_DPSDEV_R_DEVICE_CONFLICT : HUB_DPSDEV_R_ASSIGN_FAILED;
        snprintf(v->detail, sizeof(v->detail), "%s", err.msg);
        memset(&reg, 0, sizeof(reg));
        snprintf(reg.registration_id, sizeof(reg.registration_id), "%s", claim->registration_id);
        reg.status = HUB_DPS_REG_FAILED;
        reg.att_type = m.enrollment.att_type;
        if (m.enrollment.kind == HUB_DPS_GROUP)
            snprintf(reg.enrollment_group_id, sizeof(reg.enrollment_group_id), "%s",
                     m.enrollment.id);
        reg.error_code = hub_dpsdev_reason_code(v->reason);
        snprintf(reg.error_message, sizeof(reg.error_message), "%s",
                 hub_dpsdev_reason_text(v->reason));
        reg.created = reg.updated = claim->now;
    } else {
        v->reason = HUB_DPSDEV_R_OK;
    }
    hub_dps_match_clear(&m);
    /* The device's "payload" is not echoed: Azure's registrationState
     * payload is what a custom allocation policy returns, which hubd has
     * not. */
    v->registration_state = hub_dps_registration_json_new(&reg);
}

struct hub_dpsdev_backend hub_dpsdev_backend_dps(struct hub_dps *dps)
{
    struct hub_dpsdev_backend b = {.register_device = dps_register, .arg = dps};
    return b;
}
