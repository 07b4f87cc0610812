-- Argo CD health of a continuum.dev/v1alpha1 ModelDeployment (Lua 5.1, as Argo CD runs it).
-- Reads the Available/Progressing/Degraded and kstatus Ready/Reconciling/Stalled conditions the
-- operator writes; see deploy/argocd/README.md.
--   a spec the operator has not observed yet, no status -> Progressing
--   Degraded=True or Stalled=True (a version did not become ready, or failed the analysis
--   of a progressive rollout, and was rolled back)     -> Degraded
--   Progressing=True, reason RolloutPaused (spec.rollout.paused holds a step) -> Suspended
--   Progressing=True or Reconciling=True (rolling out, a shadow or canary step gathering
--   evidence, or waiting for a qualified version)      -> Progressing
--   Available=True, reason ScaledToZero (spec.replicas: 0) -> Suspended
--   Ready=True                                         -> Healthy
--   otherwise (e.g. Available=False NoReadyReplicas)   -> Degraded
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

local degraded = condition(status, "Degraded")
local stalled = condition(status, "Stalled")
if is_true(degraded) or is_true(stalled) then
  hs.status = "Degraded"
  hs.message = text(degraded, text(stalled, "Rollout failed"))
  return hs
end

local progressing = condition(status, "Progressing")
local reconciling = condition(status, "Reconciling")
if is_true(progressing) and progressing.reason == "RolloutPaused" then
  hs.status = "Suspended"
  hs.message = text(progressing, "Rollout paused")
  return hs
end
if is_true(progressing) or is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling, text(progressing, "Rolling out"))
  return hs
end

local available = condition(status, "Available")
if is_true(available) and available.reason == "ScaledToZero" then
  hs.status = "Suspended"
  hs.message = text(available, "Scaled to zero replicas")
  return hs
end

local ready = condition(status, "Ready")
if is_true(ready) then
  hs.status = "Healthy"
  hs.message = text(ready, text(available, "Serving"))
  return hs
end

hs.status = "Degraded"
hs.message = text(available, text(ready, "No server replica is ready"))
return hs
