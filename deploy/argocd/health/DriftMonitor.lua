-- Argo CD health of a continuum.dev/v1alpha1 DriftMonitor (Lua 5.1, as Argo CD runs it).
-- Reads the DriftDetected and kstatus Ready/Reconciling/Stalled conditions the operator writes;
-- see deploy/argocd/README.md.
--   a spec the operator has not observed yet, no status -> Progressing
--   Stalled=True (the drift check failed)              -> Degraded
--   Ready=True                                         -> Healthy, also when DriftDetected=True:
--       drift is what the monitor exists to find and acts on (it retrains); it is reported in the
--       message ("Drift detected: ...") and by the continuum_drift_detected metric, not as a fault
--   Reconciling=True (waiting for the deployment, first check running) -> Progressing
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = text(stalled, "The drift check failed")
  return hs
end

local ready = condition(status, "Ready")
if is_true(ready) then
  local drift = condition(status, "DriftDetected")
  hs.status = "Healthy"
  if is_true(drift) then
    hs.message = "Drift detected: " .. text(drift, "dataset drift")
  else
    hs.message = text(drift, text(ready, "Checked"))
  end
  return hs
end

hs.status = "Progressing"
hs.message = text(condition(status, "Reconciling"), text(ready, "Waiting for the first check"))
return hs
